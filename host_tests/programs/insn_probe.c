/* The instruction-window plugin's test program (no qmcu platform): a vector table, a reset handler that calls
   qmcu_infer(n) (a C loop) and asm_probe(n) (exactly 2 + 3n instructions) for n = 1, 2, 3, then a semihosting
   exit with -DEXIT_CODE=<n>. Linked with insn_probe.ld. */
#include <stdint.h>

extern uint32_t __stack_top;
void reset_handler(void);

static void hang(void) { for (;;) { } }

__attribute__((section(".vectors"), used)) void (*const vectors[16])(void) = {
    (void (*)(void))&__stack_top, reset_handler, hang, hang, hang, hang, hang, 0,
    0, 0, 0, hang, hang, 0, hang, hang,
};

volatile int sink;

/* noipa keeps GCC from specialising a constant-n clone of each call. */
__attribute__((noinline, noipa)) int qmcu_infer(int n) {
    for (int i = 0; i < n; i++) {
        sink += i;
    }
    return sink;
}

/* Exactly 2 + 3n instructions for n >= 1: movs, n x (adds, cmp, bne), bx. */
int asm_probe(int n);
__asm__(".syntax unified\n.thumb\n.text\n.global asm_probe\n.type asm_probe, %function\n.thumb_func\n"
        "asm_probe:\n"
        "    movs r1, #0\n"
        "1:  adds r1, r1, #1\n"
        "    cmp r1, r0\n"
        "    bne 1b\n"
        "    bx lr\n"
        ".size asm_probe, .-asm_probe\n");

/* SYS_EXIT_EXTENDED (0x20): r1 points at {ADP_Stopped_ApplicationExit, exit code}. On A32/T32 the
   plain SYS_EXIT (0x18) takes the reason itself in r1 and cannot pass an exit code. */
static void semihost_exit(uint32_t code) {
    static volatile uint32_t block[2];
    block[0] = 0x20026u;
    block[1] = code;
    register uint32_t r0 __asm__("r0") = 0x20u;
    register volatile uint32_t *r1 __asm__("r1") = block;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    hang();
}

void reset_handler(void) {
    qmcu_infer(1);
    qmcu_infer(2);
    qmcu_infer(3);
    asm_probe(1);
    asm_probe(2);
    asm_probe(3);
    semihost_exit(EXIT_CODE);
}
