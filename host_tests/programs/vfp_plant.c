/* A bare ELF for the image checks: 4000 bytes of .data, 256 of .bss, and (-DPLANT="<asm>") one planted VFP
   instruction without any C float code, so only the instruction scan can notice it. */
int g_table[1000] = {1, 2, 3};   /* 4000 bytes of .data: RAM, and its initial image in flash */
int g_zero[64];                  /* 256 bytes of .bss: RAM only */
__attribute__((noinline)) int integer_work(int a) { return a * 3 + 1; }
__attribute__((noinline)) int vfp_planted(int a) {
#ifdef PLANT
    __asm__ volatile(PLANT ::: "s0", "cc", "memory");  /* s0 is caller-saved: no compiler vpush */
#endif
    return a + 1;
}
void _start(void) {
    g_zero[1] = vfp_planted(integer_work(g_table[2]));
    for (;;) {}
}
