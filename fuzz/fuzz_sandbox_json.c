/*
 * fuzz_sandbox_json.c - libFuzzer target for the sandbox's fast reader of request bodies
 * (src/sandbox/json.c), checked against jansson, which it must agree with exactly.
 *
 * The sandbox reads the bank's template and SMS bodies in one pass when they are plain
 * (objects and strings) and hands anything else to json_loadb. Whatever the bytes, the two
 * must accept and refuse the same bodies, and for an accepted one see the same top-level
 * members with the same string values.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sandbox/sandbox_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every member of the body's object in d matches the same member in jansson's tree. */
static void same_members(const struct sb_doc *d, const json_t *tree)
{
    size_t seen = 0;
    for (const struct sb_jnode *m = sb_doc_first(d, &d->nodes[0]); m != NULL;
         m = sb_doc_next(d, m)) {
        const json_t *v = json_object_get(tree, m->key);
        assert(v != NULL);
        if (m->kind == SB_J_STRING) {
            assert(json_is_string(v));
            assert(json_string_length(v) == m->len);
            assert(memcmp(json_string_value(v), m->str, m->len) == 0);
        } else if (m->kind == SB_J_OBJECT) {
            assert(json_is_object(v));
        }
        seen++;
    }
    assert(seen == json_object_size(tree));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536) return 0;
    size_t cap = size + 1;
    char *scratch = malloc(cap);
    struct sb_doc *d = calloc(1, sizeof *d);
    if (scratch == NULL || d == NULL) {
        free(scratch);
        free(d);
        return 0;
    }
    json_error_t je;
    json_t *tree = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
    int rc = sb_doc_load(d, scratch, cap, data, size, JSON_REJECT_DUPLICATES);
    assert((rc == 0) == json_is_object(tree));
    if (rc == 0) {
        same_members(d, tree);
        sb_doc_free(d);
    }
    json_decref(tree);
    free(scratch);
    free(d);
    return 0;
}
