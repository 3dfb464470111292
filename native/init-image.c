/* The static berth-init executable (native/init.c, built by src/Berth.Cli/Berth.Cli.csproj's
 * BuildInit target) embedded in the `berth` binary, so the engine can write it out for
 * `--init` containers without a second file to install. BERTH_INIT_PATH is the built file. */
#include <stddef.h>

__asm__(".section .rodata\n"
        ".balign 16\n"
        ".globl berth_init_blob\n.hidden berth_init_blob\n"
        "berth_init_blob:\n"
        ".incbin \"" BERTH_INIT_PATH "\"\n"
        ".globl berth_init_blob_end\n.hidden berth_init_blob_end\n"
        "berth_init_blob_end:\n"
        ".previous\n");

extern const unsigned char berth_init_blob[];
extern const unsigned char berth_init_blob_end[];

/* The image's bytes; *length gets its size. */
const unsigned char *berth_init_image(size_t *length)
{
    *length = (size_t)(berth_init_blob_end - berth_init_blob);
    return berth_init_blob;
}
