/* The static berth-monitor executable (native/monitor.c, built by src/Berth.Cli/Berth.Cli.csproj's
 * BuildBerthMonitor target) embedded in the `berth` binary, as native/init-image.c embeds berth-init:
 * berth-shim writes it out once under the engine's root and execs it (no second file to install).
 * BERTH_MONITOR_PATH is the built file, BERTH_MONITOR_SUM_PATH the first 16 hex digits of its
 * SHA-256 (the name it is written under, so a changed monitor never reuses a stale file). */
#include <stddef.h>

__asm__(".section .rodata\n"
        ".balign 16\n"
        ".globl berth_monitor_blob\n.hidden berth_monitor_blob\n"
        "berth_monitor_blob:\n"
        ".incbin \"" BERTH_MONITOR_PATH "\"\n"
        ".globl berth_monitor_blob_end\n.hidden berth_monitor_blob_end\n"
        "berth_monitor_blob_end:\n"
        ".globl berth_monitor_sum\n.hidden berth_monitor_sum\n"
        "berth_monitor_sum:\n"
        ".incbin \"" BERTH_MONITOR_SUM_PATH "\"\n"
        ".byte 0\n"
        ".previous\n");

extern const unsigned char berth_monitor_blob[];
extern const unsigned char berth_monitor_blob_end[];
extern const char berth_monitor_sum[];

/* The image's bytes; *length gets its size. */
const unsigned char *berth_monitor_image(size_t *length)
{
    *length = (size_t)(berth_monitor_blob_end - berth_monitor_blob);
    return berth_monitor_blob;
}

/* Its checksum: 16 hex digits, NUL-terminated. */
const char *berth_monitor_checksum(void)
{
    return berth_monitor_sum;
}
