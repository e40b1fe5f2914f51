/*
 * fuzz_config.c - libFuzzer target for the config parser (wx_config_load_buffer).
 *
 * Any input must either load or fail with a message; never crash, leak or read out of
 * bounds. The environment is cleared of WXBANK_* overrides so runs are reproducible.
 * Build: clang -fsanitize=fuzzer,address,undefined -Isrc fuzz/fuzz_config.c \
 *        (every .c file in src/util) -lcrypto
 */
#include "util/config.h"

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Removes every WXBANK_* variable, so that only the input decides the outcome. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (size_t i = 0; environ[i] != NULL;) {
        const char *eq = strchr(environ[i], '=');
        if (strncmp(environ[i], "WXBANK_", 7) != 0 || eq == NULL) {
            i++;
            continue;
        }
        char name[128];
        size_t len = (size_t)(eq - environ[i]);
        if (len >= sizeof name) len = sizeof name - 1;
        memcpy(name, environ[i], len);
        name[len] = '\0';
        unsetenv(name); /* environ shifts down; look at index i again */
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    err[0] = '\0';
    wx_config_t *cfg =
        wx_config_load_buffer((const char *)data, size, "fuzz.conf", err, sizeof err);
    if (cfg == NULL) {
        assert(strncmp(err, "config: ", 8) == 0); /* every failure explains itself */
        return 0;
    }
    /* A loaded config must answer every typed getter within its rules. */
    assert(wx_config_int(cfg, "engine.hold_days") >= 1);
    assert(wx_config_int(cfg, "engine.reference_days") >
           wx_config_int(cfg, "engine.hold_days_long"));
    assert(wx_config_str(cfg, "db.url") != NULL);
    wx_config_free(cfg);
    return 0;
}
