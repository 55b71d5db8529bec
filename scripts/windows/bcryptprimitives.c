/* A stand-in for Windows' bcryptprimitives.dll under Wine 8, which lacks it: every recent Rust
 * standard library imports its ProcessPrng for random bytes. Used only to run the Windows
 * builds under Wine in tests (scripts/lib.sh, wine_prefix); real Windows has its own. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom, advapi32 */

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x7fffffff ? 0x7fffffff : (ULONG)len;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
