/*
 * keys.c - derived keys for card references, CVV2 tags, ID documents and PANs at rest.
 */
#include "keys/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/config.h"
#include "util/crypto.h"

struct wx_keys {
    wx_hmac_key_t *ref; /* card references */
    wx_hmac_key_t *cvv; /* CVV2 tags */
    wx_hmac_key_t *id;  /* ID documents */
    uint8_t seal[32];   /* AES-256-GCM for PANs at rest */
};

wx_keys_t *wx_keys_new(const uint8_t master[32])
{
    uint8_t k[32];
    struct wx_keys *keys = wx_calloc(1, sizeof *keys);
    wx_kdf(master, "wxbank card reference v1", k);
    keys->ref = wx_hmac_key_new(k, sizeof k);
    wx_kdf(master, "wxbank cvv2 v1", k);
    keys->cvv = wx_hmac_key_new(k, sizeof k);
    wx_kdf(master, "wxbank id document v1", k);
    keys->id = wx_hmac_key_new(k, sizeof k);
    wx_kdf(master, "wxbank pan at rest v1", keys->seal);
    wx_wipe(k, sizeof k);
    return keys;
}

void wx_keys_free(wx_keys_t *k)
{
    if (k == NULL) {
        return;
    }
    wx_hmac_key_free(k->ref);
    wx_hmac_key_free(k->cvv);
    wx_hmac_key_free(k->id);
    wx_wipe(k->seal, sizeof k->seal);
    free(k);
}

void wx_keys_check_value(const uint8_t master[32], uint8_t out[16])
{
    uint8_t full[32];
    wx_kdf(master, "wxbank key check v1", full);
    memcpy(out, full, 16);
}

void wx_card_ref(const wx_keys_t *k, const char *pan, uint8_t ref[WX_REF_LEN])
{
    uint8_t full[32];
    wx_hmac_key_digest(k->ref, pan, strlen(pan), full);
    memcpy(ref, full, WX_REF_LEN);
}

uint64_t wx_cvv_tag(const wx_keys_t *k, const char *pan, uint16_t expiry, const char *cvv)
{
    char msg[64];
    uint8_t full[32];
    uint64_t tag;
    int n = snprintf(msg, sizeof msg, "%s|%04u|%s", pan, (unsigned)expiry, cvv);
    wx_hmac_key_digest(k->cvv, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1, full);
    wx_wipe(msg, sizeof msg);
    memcpy(&tag, full, sizeof tag);
    return tag ? tag : 1; /* 0 means "no CVV2 presented" */
}

void wx_id_hmac(const wx_keys_t *k, const char *id_doc, uint8_t out[WX_REF_LEN])
{
    char norm[WX_ID_DOC_MAX + 1];
    size_t n = 0;
    for (const char *p = id_doc; *p && n < WX_ID_DOC_MAX; p++) {
        if (*p == ' ' || *p == '-') {
            continue;
        }
        norm[n++] = (*p >= 'a' && *p <= 'z') ? (char)(*p - 'a' + 'A') : *p;
    }
    uint8_t full[32];
    wx_hmac_key_digest(k->id, norm, n, full);
    memcpy(out, full, WX_REF_LEN);
}

int wx_pan_seal(const wx_keys_t *k, const char *pan, uint8_t *out, size_t cap, size_t *len)
{
    return wx_seal(k->seal, pan, strlen(pan), out, cap, len) == 0 ? 0 : -1;
}

int wx_pan_unseal(const wx_keys_t *k, const uint8_t *in, size_t len, char *pan)
{
    size_t n;
    if (wx_open(k->seal, in, len, pan, WX_PAN_MAX, &n) != 0) {
        return -1;
    }
    pan[n] = '\0';
    return 0;
}

/* Writes a new random master key, hex-encoded, to a file only the owner can read. */
static int create_key_file(const char *path, char *err, size_t errlen)
{
    uint8_t key[32];
    char hex[65];
    wx_random_bytes(key, sizeof key);
    wx_hex_encode(key, sizeof key, hex, sizeof hex);
    wx_wipe(key, sizeof key);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "crypto.pan_key: cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    hex[64] = '\n';
    ssize_t w = write(fd, hex, 65);
    int rc = (w == 65 && fsync(fd) == 0) ? 0 : -1;
    close(fd);
    wx_wipe(hex, sizeof hex);
    if (rc != 0) {
        snprintf(err, errlen, "crypto.pan_key: cannot write %s", path);
    }
    return rc;
}

static int read_key_file(const char *path, uint8_t master[32], char *err, size_t errlen)
{
    char buf[128];
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, errlen, "crypto.pan_key: cannot read %s: %s (run `wxbank init`)", path,
                 strerror(errno));
        return -1;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) {
        buf[--n] = '\0';
    }
    int rc = wx_key_parse(buf, master);
    wx_wipe(buf, sizeof buf);
    if (rc != 0) {
        snprintf(err, errlen, "crypto.pan_key: %s must hold 64 hex characters", path);
        return -1;
    }
    return 0;
}

int wx_keys_load_master(const struct wx_config *cfg, const char *db_path, int create,
                        uint8_t master[32], char *err, size_t errlen)
{
    const char *configured = wx_config_str(cfg, "crypto.pan_key");
    if (configured != NULL && configured[0] != '\0') {
        if (wx_key_parse(configured, master) != 0) {
            snprintf(err, errlen, "crypto.pan_key: must be 64 hex characters (or @file)");
            return -1;
        }
        return 0;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s.key", db_path);
    if (create && access(path, F_OK) != 0 && create_key_file(path, err, errlen) != 0) {
        return -1;
    }
    return read_key_file(path, master, err, errlen);
}
