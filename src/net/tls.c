/*
 * tls.c - the HTTPS listener's TLS context, and the self-signed pair `wxbank init` makes.
 *
 * The policy is fixed here rather than configurable, because the pages behind HTTPS are the
 * bank's most sensitive (binding a card, the transaction password) and there is no client we
 * must stay compatible with beyond current phone browsers: TLS 1.2 and 1.3 only; under 1.2
 * only forward-secret AEAD suites (ECDHE with AES-GCM or ChaCha20-Poly1305) in the server's
 * order of preference (ChaCha20 first only for a client that puts it first: phones without
 * AES instructions); no compression (CRIME); no renegotiation, by either side; no session
 * cache shared between threads (TLS 1.3 tickets still let a browser resume).
 *
 * The self-signed certificate is for loopback use (the demo, tests, a developer's browser):
 * CN=localhost with subjectAltName DNS:localhost and IP:127.0.0.1, an EC P-256 key, one year.
 * A production bank gives https.cert and https.key from its certificate authority instead.
 */
#include "net/tls_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "util/alloc.h"
#include "util/crypto.h"
#include "util/log.h"

/* TLS 1.2 suites, most preferred first (the order Mozilla's "intermediate" profile uses). */
#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/* TLS 1.3 suites (all three are AEAD; this is OpenSSL's default, written out). */
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS   "X25519:P-256:P-384"

/* The reason of OpenSSL's last error on this thread, and the queue emptied. */
static const char *openssl_reason(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, cap, "%s", r != NULL ? r : "unknown OpenSSL error");
    ERR_clear_error();
    return buf;
}

/* A password callback that has none: an encrypted key fails instead of OpenSSL asking for
 * a passphrase on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)arg;
    return -1;
}

/* Applies the policy in the header comment. 0, or -1 (OpenSSL refused a setting). */
static int apply_policy(SSL_CTX *ctx)
{
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) return -1;
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) return -1;
    if (SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1) return -1;
    if (SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1) return -1;
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA |
                                 SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* http.c writes from its output buffer, which may move between retries, and goes on
     * after each record; idle connections give their record buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx, 1); /* one read() per socket event, not two per record */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    return 0;
}

/* Loads the private key in key_file into ctx, after its certificate. 0, or WX_TLS_BAD_KEY
 * with the reason in err. */
static int load_key(SSL_CTX *ctx, const char *key_file, char *err, size_t errlen)
{
    char why[160];
    FILE *f = fopen(key_file, "re");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read it: %s", strerror(errno));
        return WX_TLS_BAD_KEY;
    }
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
    fclose(f);
    if (key == NULL) {
        snprintf(err, errlen, "not an unencrypted PEM private key (%s)",
                 openssl_reason(why, sizeof why));
        return WX_TLS_BAD_KEY;
    }
    int rc = 0;
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "not the certificate's key (%s)", openssl_reason(why, sizeof why));
        rc = WX_TLS_BAD_KEY;
    }
    EVP_PKEY_free(key);
    struct stat st;
    if (rc == 0 && stat(key_file, &st) == 0 && (st.st_mode & 077) != 0) {
        WX_WARN("https: %s is readable by other users (mode %03o): chmod 600 it", key_file,
                (unsigned)(st.st_mode & 0777));
    }
    return rc;
}

int wx_tls_new(const char *cert_file, const char *key_file, wx_tls_t **out, char *err,
               size_t errlen)
{
    char why[160];
    *out = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || apply_policy(ctx) != 0) WX_FATAL("OpenSSL: cannot make a TLS context");
    int rc = 0;
    FILE *f = fopen(cert_file, "re");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read it: %s", strerror(errno));
        rc = WX_TLS_BAD_CERT;
        goto out;
    }
    fclose(f);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        snprintf(err, errlen, "not a PEM certificate (%s)", openssl_reason(why, sizeof why));
        rc = WX_TLS_BAD_CERT;
        goto out;
    }
    rc = load_key(ctx, key_file, err, errlen);
    if (rc != 0) goto out;
    X509 *crt = SSL_CTX_get0_certificate(ctx);
    if (crt != NULL && X509_cmp_current_time(X509_get0_notAfter(crt)) <= 0) {
        WX_WARN("https: the certificate in %s has expired: browsers will refuse it", cert_file);
    }
    *out = wx_calloc(1, sizeof **out);
    (*out)->ctx = ctx;
    ctx = NULL;
out:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

void wx_tls_free(wx_tls_t *t)
{
    if (t == NULL) return;
    SSL_CTX_free(t->ctx);
    free(t);
}

int wx_tls_default_paths(const char *db_path, char *cert, char *key, size_t cap)
{
    int a = snprintf(cert, cap, "%s.tls.crt", db_path);
    int b = snprintf(key, cap, "%s.tls.key", db_path);
    return a > 0 && (size_t)a < cap && b > 0 && (size_t)b < cap ? 0 : -1;
}

/* ---- the self-signed pair ---------------------------------------------------------------- */

/* Adds extension nid with OpenSSL's config-style value (as `openssl x509 -extfile` takes
 * it) to crt, which is its own issuer. 0, or -1. */
static int add_ext(X509 *crt, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, crt, crt, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    int ok = ext != NULL && X509_add_ext(crt, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* A certificate for key, signed by itself, valid from now for days. NULL on failure. */
static X509 *self_signed(EVP_PKEY *key, unsigned days)
{
    X509 *crt = X509_new();
    uint8_t serial[16]; /* RFC 5280: positive, at most 20 octets, unpredictable */
    wx_random_bytes(serial, sizeof serial);
    serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x40);
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    X509_NAME *name = crt != NULL ? X509_get_subject_name(crt) : NULL;
    bool ok = crt != NULL && bn != NULL && X509_set_version(crt, X509_VERSION_3) == 1 &&
              BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(crt)) != NULL &&
              X509_gmtime_adj(X509_getm_notBefore(crt), 0) != NULL &&
              X509_gmtime_adj(X509_getm_notAfter(crt), (long)days * 86400) != NULL &&
              X509_set_pubkey(crt, key) == 1 &&
              X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                         (const unsigned char *)"localhost", -1, -1, 0) == 1 &&
              X509_set_issuer_name(crt, name) == 1 &&
              add_ext(crt, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
              add_ext(crt, NID_key_usage, "critical,digitalSignature") == 0 &&
              add_ext(crt, NID_ext_key_usage, "serverAuth") == 0 &&
              add_ext(crt, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") == 0 &&
              add_ext(crt, NID_subject_key_identifier, "hash") == 0 &&
              X509_sign(crt, key, EVP_sha256()) > 0;
    BN_free(bn);
    if (!ok) {
        X509_free(crt);
        return NULL;
    }
    return crt;
}

/* Creates path (which must not exist) with mode and the bytes of bio, synced. 0, or -1 with
 * err; a file half written is removed. */
static int write_new_file(const char *path, mode_t mode, BIO *bio, char *err, size_t errlen)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    /* exactly mode, whatever the umask took away */
    bool ok = fchmod(fd, mode) == 0 && len > 0;
    for (long off = 0; ok && off < len;) {
        ssize_t n = write(fd, data + off, (size_t)(len - off));
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        if (ok) off += n;
    }
    ok = ok && fsync(fd) == 0;
    int saved = errno;
    if (close(fd) != 0) ok = false;
    if (!ok) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(saved));
        unlink(path);
        return -1;
    }
    return 0;
}

int wx_tls_make_self_signed(const char *cert_file, const char *key_file, unsigned days, char *err,
                            size_t errlen)
{
    bool have_cert = access(cert_file, F_OK) == 0, have_key = access(key_file, F_OK) == 0;
    if (have_cert && have_key) return WX_TLS_EXISTS;
    if (have_cert || have_key) {
        snprintf(err, errlen, "%s exists without %s: remove it, or give both",
                 have_cert ? cert_file : key_file, have_cert ? key_file : cert_file);
        return -1;
    }
    char why[160];
    int rc = -1;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *crt = key != NULL ? self_signed(key, days) : NULL;
    BIO *kb = BIO_new(BIO_s_secmem()), *cb = BIO_new(BIO_s_mem());
    if (crt == NULL || kb == NULL || cb == NULL ||
        PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) != 1 ||
        PEM_write_bio_X509(cb, crt) != 1) {
        snprintf(err, errlen, "cannot make a certificate: %s", openssl_reason(why, sizeof why));
        goto out;
    }
    if (write_new_file(key_file, 0600, kb, err, errlen) != 0) goto out;
    if (write_new_file(cert_file, 0644, cb, err, errlen) != 0) {
        unlink(key_file);
        goto out;
    }
    rc = 0;
out:
    BIO_free(cb);
    BIO_free(kb); /* a secure-memory BIO: the key's PEM is wiped on free */
    X509_free(crt);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return rc;
}
