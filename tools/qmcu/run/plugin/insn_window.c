/*
 * insn_window: an exact guest instruction counter for QEMU (TCG plugin, API version 1).
 *
 * Every executed guest instruction adds 1 to a 64-bit counter through an inline op that
 * QEMU emits in front of the instruction's own code, so the count is per instruction, not
 * per translation block: an exception in the middle of a block stops the count exactly
 * there.
 *
 * Arguments (each passed by QEMU as "key=value"):
 *   entry=ADDR  address of the first instruction of the measured function (bit 0 clear
 *               for Thumb code: QEMU reports instruction addresses without the Thumb bit)
 *   ret=ADDR    a return address of that function, i.e. the address of the instruction
 *               after a call site; give one ret= per call site
 *   out=PATH    file to write at exit
 * ADDR is parsed by strtoull(base 0): 0x1234, 4660 and 011064 are all accepted.
 * entry and ret are optional, but only together: without them only the total is written.
 *
 * Windows: each time the entry instruction executes, the running count is remembered and a
 * window opens. Each time a ret instruction executes while a window is open, the window
 * closes and (count now - count at entry) is recorded. That difference is exactly the
 * number of instructions the function executed, from its first instruction through its
 * return instruction, including anything it called and any exception handler that ran in
 * between. Nesting is not supported: an entry while a window is open restarts the window
 * (the earlier, unfinished window is dropped). A ret with no open window is ignored, and a
 * window still open at exit is not written.
 *
 * Output, written at exit to PATH.tmp and renamed to PATH: one decimal window count per
 * line in execution order, then "total N" with the instruction count of the whole run.
 * If memory for the window list runs out, a line "error ..." is written instead of the
 * total so that readers reject the file.
 *
 * Single vCPU only: the counter and window state are plain globals (the inline add is not
 * atomic), which is exact for the single-core Cortex-M machines qmcu runs.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_api.h"

QMCU_PLUGIN_EXPORT int qemu_plugin_version = QMCU_QEMU_PLUGIN_API_VERSION;

static uint64_t insn_count;

static int have_entry;
static uint64_t entry_addr;
static uint64_t *ret_addrs;
static size_t n_rets;
static char *out_path;

static int window_open;
static uint64_t window_start;
static uint64_t *windows;
static size_t n_windows;
static size_t cap_windows;
static int out_of_memory;

static void on_entry(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    window_start = insn_count;
    window_open = 1;
}

static void on_ret(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    if (!window_open) {
        return;
    }
    window_open = 0;
    if (n_windows == cap_windows) {
        size_t new_cap = cap_windows ? 2 * cap_windows : 64;
        uint64_t *grown = realloc(windows, new_cap * sizeof *grown);
        if (grown == NULL) {
            out_of_memory = 1;
            return;
        }
        windows = grown;
        cap_windows = new_cap;
    }
    windows[n_windows++] = insn_count - window_start;
}

static int is_ret_addr(uint64_t vaddr)
{
    for (size_t i = 0; i < n_rets; i++) {
        if (ret_addrs[i] == vaddr) {
            return 1;
        }
    }
    return 0;
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &insn_count, 1);
        if (!have_entry) {
            continue;
        }
        uint64_t vaddr = qemu_plugin_insn_vaddr(insn);
        /* Close before open, so that an address that is both ret and entry still works. */
        if (is_ret_addr(vaddr)) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_ret, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        if (vaddr == entry_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_entry, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
    }
}

static void write_results(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    size_t len = strlen(out_path);
    char *tmp_path = malloc(len + sizeof ".tmp");
    if (tmp_path == NULL) {
        fprintf(stderr, "insn_window: out of memory writing %s\n", out_path);
        return;
    }
    memcpy(tmp_path, out_path, len);
    memcpy(tmp_path + len, ".tmp", sizeof ".tmp");

    FILE *f = fopen(tmp_path, "w");
    if (f == NULL) {
        fprintf(stderr, "insn_window: cannot write %s: %s\n", tmp_path, strerror(errno));
        free(tmp_path);
        return;
    }
    for (size_t i = 0; i < n_windows; i++) {
        fprintf(f, "%" PRIu64 "\n", windows[i]);
    }
    if (out_of_memory) {
        fprintf(f, "error out of memory: some windows were lost\n");
    } else {
        fprintf(f, "total %" PRIu64 "\n", insn_count);
    }
    int failed = ferror(f);
    failed |= fclose(f) != 0;
    if (failed || rename(tmp_path, out_path) != 0) {
        fprintf(stderr, "insn_window: cannot write %s: %s\n", out_path, strerror(errno));
        remove(tmp_path);
    }
    free(tmp_path);

    char summary[128];
    snprintf(summary, sizeof summary, "insn_window: %zu windows, %" PRIu64 " instructions\n", n_windows,
             insn_count);
    qemu_plugin_outs(summary);
}

static int parse_addr(const char *key, const char *text, uint64_t *value)
{
    char *end = NULL;
    errno = 0;
    unsigned long long parsed = strtoull(text, &end, 0);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-') {
        fprintf(stderr, "insn_window: %s=%s is not an address\n", key, text);
        return -1;
    }
    *value = (uint64_t)parsed;
    return 0;
}

QMCU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    ret_addrs = calloc(argc > 0 ? (size_t)argc : 1, sizeof *ret_addrs);
    if (ret_addrs == NULL) {
        fprintf(stderr, "insn_window: out of memory\n");
        return -1;
    }
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strchr(arg, '=');
        if (eq == NULL) {
            fprintf(stderr, "insn_window: argument '%s' is not key=value\n", arg);
            return -1;
        }
        size_t key_len = (size_t)(eq - arg);
        const char *value = eq + 1;
        if (key_len == 5 && strncmp(arg, "entry", 5) == 0) {
            if (parse_addr("entry", value, &entry_addr) != 0) {
                return -1;
            }
            have_entry = 1;
        } else if (key_len == 3 && strncmp(arg, "ret", 3) == 0) {
            if (parse_addr("ret", value, &ret_addrs[n_rets]) != 0) {
                return -1;
            }
            n_rets++;
        } else if (key_len == 3 && strncmp(arg, "out", 3) == 0) {
            if (value[0] == '\0') {
                fprintf(stderr, "insn_window: out= is empty\n");
                return -1;
            }
            size_t size = strlen(value) + 1;
            free(out_path);
            out_path = malloc(size);
            if (out_path == NULL) {
                fprintf(stderr, "insn_window: out of memory\n");
                return -1;
            }
            memcpy(out_path, value, size);
        } else {
            fprintf(stderr, "insn_window: unknown argument '%s' (expected entry=, ret=, out=)\n", arg);
            return -1;
        }
    }
    if (out_path == NULL) {
        fprintf(stderr, "insn_window: out=PATH is required\n");
        return -1;
    }
    if (have_entry != (n_rets > 0)) {
        fprintf(stderr, "insn_window: entry= and ret= must be given together\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_atexit_cb(id, write_results, NULL);
    return 0;
}
