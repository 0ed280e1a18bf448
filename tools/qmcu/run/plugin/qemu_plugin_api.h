/*
 * The small part of the QEMU TCG plugin API that insn_window.c uses.
 *
 * Debian ships qemu-system-arm 7.2 with plugin support, but no package installs
 * <qemu/qemu-plugin.h>, so these declarations are written here from the documented
 * QEMU 7.2 API (include/qemu/qemu-plugin.h, API version 1):
 *
 *   - a plugin exports `int qemu_plugin_version`; QEMU 7.2 refuses a plugin whose value
 *     is above its current API version (1) or below its minimum (0);
 *   - a plugin exports qemu_plugin_install(), called once when it is loaded;
 *   - every other function below is provided by the QEMU binary and resolved by the
 *     dynamic loader when QEMU dlopen()s the plugin.
 *
 * Version 2 (QEMU 9.0) removed the *_exec_inline calls used here in favour of the
 * per-vCPU scoreboard API, so this file matches QEMU 7.x/8.x only.
 */
#ifndef QMCU_QEMU_PLUGIN_API_H
#define QMCU_QEMU_PLUGIN_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QMCU_PLUGIN_EXPORT __attribute__((visibility("default")))

/* The plugin API version this file describes: the one QEMU 7.2 implements. */
#define QMCU_QEMU_PLUGIN_API_VERSION 1

typedef uint64_t qemu_plugin_id_t;

/* Guest description passed to qemu_plugin_install(); only valid during that call. */
typedef struct qemu_info_t {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;

/* Opaque handles; only valid inside the translation callback that received them. */
struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_cb_flags {
    QEMU_PLUGIN_CB_NO_REGS = 0,
    QEMU_PLUGIN_CB_R_REGS = 1,
    QEMU_PLUGIN_CB_RW_REGS = 2,
};

/* API version 1 has a single inline operation: *ptr += imm (uint64_t, not atomic). */
enum qemu_plugin_op {
    QEMU_PLUGIN_INLINE_ADD_U64 = 0,
};

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

/* Exported by the plugin. */
extern QMCU_PLUGIN_EXPORT int qemu_plugin_version;
QMCU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv);

/* Provided by QEMU. */
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op, void *ptr,
                                                uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_outs(const char *string);

#endif /* QMCU_QEMU_PLUGIN_API_H */
