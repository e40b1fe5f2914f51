/*
 * msgcrypt.c - safe-mode message crypto, byte for byte what the official WXBizMsgCrypt
 * samples do, so that the platform (and every SDK) can read what we write and vice versa.
 *
 * A message travels as base64(AES-256-CBC(FullStr)) where FullStr = 16 random bytes, the
 * message length as a big-endian uint32, the message, then the AppID; the key is the 43-char
 * EncodingAESKey base64-decoded, the IV its first 16 bytes, and the padding PKCS#7 with a
 * block of 32 done by hand (OpenSSL's own padding is off: it would use 16). Decrypting checks
 * every framing field against the bytes actually there before copying anything, and wipes
 * what it decrypted when a check fails.
 *
 * Base64 is written here rather than taken from EVP_DecodeBlock, which skips whitespace,
 * ignores what follows '=' and returns padding bytes as data: the decoder below accepts only
 * the standard alphabet with exact '=' padding and (for Encrypt) zero unused tail bits.
 */
#include "wechat/wechat.h"

#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "util/alloc.h"
#include "util/crypto.h"
#include "util/log.h"

#define AES_BLOCK    16
#define PAD_BLOCK    32 /* WeChat's PKCS#7 block: pad values run 1..32 */
#define LEN_FIELD    4  /* big-endian message length after the random prefix */
#define HEADER_BYTES (WX_WECHAT_RANDOM_LEN + LEN_FIELD)

/* The encrypted reply, in the exact shape of the official samples (README §3 step 8). */
#define ENV_HEAD  "<xml>\n<Encrypt><![CDATA["
#define ENV_SIG   "]]></Encrypt>\n<MsgSignature><![CDATA["
#define ENV_TIME  "]]></MsgSignature>\n<TimeStamp>"
#define ENV_NONCE "</TimeStamp>\n<Nonce><![CDATA["
#define ENV_TAIL  "]]></Nonce>\n</xml>"

const char *wx_wechat_strerror(int rc)
{
    switch (rc) {
    case WX_WECHAT_OK:
        return "ok";
    case WX_WECHAT_EVALIDATE_SIGNATURE:
        return "signature does not match";
    case WX_WECHAT_EPARSE_XML:
        return "message XML rejected";
    case WX_WECHAT_ECOMPUTE_SIGNATURE:
        return "cannot compute signature";
    case WX_WECHAT_EILLEGAL_AES_KEY:
        return "EncodingAESKey is not 43 characters of [A-Za-z0-9]";
    case WX_WECHAT_EVALIDATE_APPID:
        return "message was encrypted for another appid";
    case WX_WECHAT_EENCRYPT_AES:
        return "AES encryption failed";
    case WX_WECHAT_EDECRYPT_AES:
        return "ciphertext is not a whole number of AES blocks";
    case WX_WECHAT_EILLEGAL_BUFFER:
        return "decrypted message has bad padding or framing (wrong key?)";
    case WX_WECHAT_EENCODE_BASE64:
        return "base64 encoding failed";
    case WX_WECHAT_EDECODE_BASE64:
        return "Encrypt is not valid base64";
    case WX_WECHAT_EGEN_RETURN_XML:
        return "reply timestamp or nonce not allowed";
    case WX_WECHAT_ESPACE:
        return "buffer too small or input too long";
    case WX_WECHAT_EARG:
        return "token or appid empty or too long";
    default:
        return "unknown error";
    }
}

/* ---- base64 (RFC 4648 section 4, strict) ----------------------------------------------- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* B64_VALUE[c]: the 6-bit value of a base64 character, or B64_BAD for anything else ('='
 * included). Built from B64 so the two alphabets cannot disagree. */
#define B64_BAD 0x80
static uint8_t B64_VALUE[256];
static pthread_once_t b64_once = PTHREAD_ONCE_INIT;

static void b64_table_init(void)
{
    memset(B64_VALUE, B64_BAD, sizeof B64_VALUE);
    for (size_t i = 0; i < 64; i++) {
        B64_VALUE[(unsigned char)B64[i]] = (uint8_t)i;
    }
}

/* The 6-bit value of a base64 character, or -1 for anything else ('=' included). */
static int b64_value(unsigned char c)
{
    uint8_t v = B64_VALUE[c];
    return v == B64_BAD ? -1 : v;
}

/*
 * Decodes len characters (a multiple of 4; '=' only as the last one or two) into out, which
 * holds len / 4 * 3 bytes. strict_tail also rejects non-zero unused bits before the padding
 * (standard encoders write zeros; an EncodingAESKey's 43rd character usually has them set).
 * Returns false on any deviation. Whole quads go through a table without a branch per
 * character: one bad character anywhere sets B64_BAD in the OR of a quad's values.
 */
static bool b64_decode(const char *in, size_t len, bool strict_tail, uint8_t *out, size_t *out_len)
{
    pthread_once(&b64_once, b64_table_init);
    if (len % 4 != 0) return false;
    size_t pad = 0;
    if (len > 0 && in[len - 1] == '=') pad = in[len - 2] == '=' ? 2 : 1;
    const unsigned char *u = (const unsigned char *)in;
    size_t whole = len == 0 ? 0 : len - 4; /* the last quad may hold padding */
    size_t o = 0;
    for (size_t i = 0; i < whole; i += 4) {
        uint8_t a = B64_VALUE[u[i]], b = B64_VALUE[u[i + 1]];
        uint8_t c = B64_VALUE[u[i + 2]], d = B64_VALUE[u[i + 3]];
        if (((a | b | c | d) & B64_BAD) != 0) return false;
        uint32_t q = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | d;
        out[o] = (uint8_t)(q >> 16);
        out[o + 1] = (uint8_t)(q >> 8);
        out[o + 2] = (uint8_t)q;
        o += 3;
    }
    if (len > 0) {
        size_t i = whole;
        int v[4] = {0, 0, 0, 0};
        for (size_t k = 0; k < 4 - pad; k++) {
            v[k] = b64_value(u[i + k]);
            if (v[k] < 0) return false;
        }
        uint32_t q =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (uint8_t)(q >> 16);
        if (pad < 2) out[o++] = (uint8_t)(q >> 8);
        if (pad < 1) out[o++] = (uint8_t)q;
    }
    if (strict_tail && pad == 2 && (b64_value(u[len - 3]) & 0x0f) != 0) {
        return false;
    }
    if (strict_tail && pad == 1 && (b64_value(u[len - 2]) & 0x03) != 0) {
        return false;
    }
    *out_len = o;
    return true;
}

static size_t b64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

/* Writes the base64 text of n bytes and a NUL to out (b64_encoded_len(n) + 1 bytes). Whole
 * triples first, without a branch per character, then the padded tail. */
static void b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; n - i >= 3; i += 3) {
        uint32_t q = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o] = B64[q >> 18 & 63];
        out[o + 1] = B64[q >> 12 & 63];
        out[o + 2] = B64[q >> 6 & 63];
        out[o + 3] = B64[q & 63];
        o += 4;
    }
    if (n - i > 0) {
        size_t left = n - i;
        uint32_t q = (uint32_t)in[i] << 16;
        if (left > 1) q |= (uint32_t)in[i + 1] << 8;
        out[o++] = B64[q >> 18 & 63];
        out[o++] = B64[q >> 12 & 63];
        out[o++] = left > 1 ? B64[q >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
}

/* ---- keys and settings ----------------------------------------------------------------- */

static bool is_alnum_ascii(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int wx_wechat_aes_key_parse(const char *encoding_aes_key, uint8_t key[32])
{
    assert(encoding_aes_key != NULL);
    assert(key != NULL);
    const char *k = encoding_aes_key;
    char text[WX_WECHAT_AES_KEY_TEXT_LEN + 1];
    uint8_t raw[33];
    size_t n = 0;
    int rc = WX_WECHAT_EILLEGAL_AES_KEY;

    if (strnlen(k, WX_WECHAT_AES_KEY_TEXT_LEN + 1) != WX_WECHAT_AES_KEY_TEXT_LEN) goto out;
    for (size_t i = 0; i < WX_WECHAT_AES_KEY_TEXT_LEN; i++) {
        if (!is_alnum_ascii(k[i])) goto out;
    }
    memcpy(text, k, WX_WECHAT_AES_KEY_TEXT_LEN);
    text[WX_WECHAT_AES_KEY_TEXT_LEN] = '=';
    /* Lenient tail: 43 random alphanumerics leave 2 unused bits that are usually not zero, and
     * every SDK (Python b64decode, Java, Go) ignores them. */
    if (!b64_decode(text, sizeof text, false, raw, &n) || n != 32) goto out;
    memcpy(key, raw, 32);
    rc = 0;
out:
    if (rc != 0) wx_wipe(key, 32);
    wx_wipe(text, sizeof text);
    wx_wipe(raw, sizeof raw);
    return rc;
}

int wx_wechat_crypt_init(struct wx_wechat_crypt *c, const char *token, const char *encoding_aes_key,
                         const char *appid)
{
    assert(c != NULL);
    assert(token != NULL && encoding_aes_key != NULL && appid != NULL);
    memset(c, 0, sizeof *c);
    size_t tlen = strnlen(token, WX_WECHAT_TOKEN_MAX + 1);
    size_t alen = strnlen(appid, WX_WECHAT_APPID_MAX + 1);
    if (tlen == 0 || tlen > WX_WECHAT_TOKEN_MAX || alen == 0 || alen > WX_WECHAT_APPID_MAX) {
        return WX_WECHAT_EARG;
    }
    int rc = wx_wechat_aes_key_parse(encoding_aes_key, c->key);
    if (rc != 0) {
        wx_wechat_crypt_clear(c);
        return rc;
    }
    memcpy(c->token, token, tlen);
    memcpy(c->appid, appid, alen);
    c->token_len = tlen;
    c->appid_len = alen;
    return 0;
}

void wx_wechat_crypt_clear(struct wx_wechat_crypt *c)
{
    if (c != NULL) wx_wipe(c, sizeof *c);
}

/* ---- AES-256-CBC without padding -------------------------------------------------------- */

static EVP_CIPHER *cbc_cipher;
static pthread_once_t cbc_once = PTHREAD_ONCE_INIT;

static void cbc_fetch(void)
{
    cbc_cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    if (cbc_cipher == NULL) WX_FATAL("OpenSSL: cannot fetch AES-256-CBC");
}

/*
 * One cipher context per thread and direction, kept for the thread's life: creating one per
 * call cost an allocation and a provider context each time. Each call sets the key again
 * (a key schedule is cheap; the contexts are not tied to one struct wx_wechat_crypt). The
 * pthread key's destructor frees them (EVP_CIPHER_CTX_free cleanses) when a thread ends;
 * the key schedule left in them meanwhile is no more exposure than the key itself, which
 * struct wx_wechat_crypt holds for as long.
 */
static _Thread_local EVP_CIPHER_CTX *cbc_ctx[2]; /* [enc]: 0 decrypts, 1 encrypts */
static pthread_key_t cbc_ctx_key;
static pthread_once_t cbc_ctx_once = PTHREAD_ONCE_INIT;

static void cbc_ctx_free(void *p)
{
    EVP_CIPHER_CTX **ctx = p;
    EVP_CIPHER_CTX_free(ctx[0]);
    EVP_CIPHER_CTX_free(ctx[1]);
    ctx[0] = ctx[1] = NULL;
}

static void cbc_ctx_key_init(void)
{
    if (pthread_key_create(&cbc_ctx_key, cbc_ctx_free) != 0) WX_FATAL("pthread_key_create");
}

static EVP_CIPHER_CTX *cbc_ctx_get(int enc)
{
    assert(enc == 0 || enc == 1);
    if (cbc_ctx[enc] == NULL) {
        pthread_once(&cbc_ctx_once, cbc_ctx_key_init);
        cbc_ctx[enc] = EVP_CIPHER_CTX_new();
        if (cbc_ctx[enc] == NULL) WX_FATAL("out of memory (EVP_CIPHER_CTX_new)");
        pthread_setspecific(cbc_ctx_key, cbc_ctx);
    }
    return cbc_ctx[enc];
}

/*
 * Encrypts (enc) or decrypts len bytes of buf in place, len a non-zero multiple of 16, with
 * IV = the key's first 16 bytes. Returns false only when OpenSSL refuses (logged here).
 */
static bool aes_cbc_in_place(const uint8_t key[32], int enc, uint8_t *buf, size_t len)
{
    assert(len > 0 && len % AES_BLOCK == 0);
    assert(len <= INT_MAX);
    pthread_once(&cbc_once, cbc_fetch);
    bool ok = false;
    int n = 0, fin = 0;
    EVP_CIPHER_CTX *ctx = cbc_ctx_get(enc);
    if (EVP_CipherInit_ex2(ctx, cbc_cipher, key, key, enc, NULL) != 1) goto out;
    if (EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) goto out;
    /* EVP allows in == out exactly (OpenSSL 3 EVP_EncryptUpdate(3)). */
    if (EVP_CipherUpdate(ctx, buf, &n, buf, (int)len) != 1) goto out;
    if (EVP_CipherFinal_ex(ctx, buf + n, &fin) != 1) goto out;
    assert((size_t)(n + fin) == len);
    ok = true;
out:
    if (!ok) WX_ERROR("AES-256-CBC failed: %s", ERR_reason_error_string(ERR_get_error()));
    return ok;
}

/* ---- encrypt ---------------------------------------------------------------------------- */

/* Bytes of the padded FullStr for a msg_len-byte message: always 1..32 bytes of padding. */
static size_t padded_len(const struct wx_wechat_crypt *c, size_t msg_len)
{
    size_t full = HEADER_BYTES + msg_len + c->appid_len;
    return full + (PAD_BLOCK - full % PAD_BLOCK);
}

size_t wx_wechat_encrypt_cap(const struct wx_wechat_crypt *c, size_t msg_len)
{
    assert(c != NULL);
    assert(msg_len <= WX_WECHAT_BODY_MAX);
    return b64_encoded_len(padded_len(c, msg_len)) + 1;
}

int wx_wechat_encrypt(const struct wx_wechat_crypt *c, const void *msg, size_t len,
                      const uint8_t random[WX_WECHAT_RANDOM_LEN], char *out, size_t cap,
                      size_t *out_len)
{
    assert(c != NULL && random != NULL && out != NULL && out_len != NULL);
    assert(msg != NULL || len == 0);
    assert(c->appid_len > 0 && c->appid_len <= WX_WECHAT_APPID_MAX);
    if (len > WX_WECHAT_BODY_MAX || cap < wx_wechat_encrypt_cap(c, len)) return WX_WECHAT_ESPACE;

    size_t total = padded_len(c, len);
    size_t pad = total - (HEADER_BYTES + len + c->appid_len);
    assert(pad >= 1 && pad <= PAD_BLOCK && total % PAD_BLOCK == 0);
    uint8_t *full = wx_malloc(total);
    memcpy(full, random, WX_WECHAT_RANDOM_LEN);
    full[16] = (uint8_t)(len >> 24);
    full[17] = (uint8_t)(len >> 16);
    full[18] = (uint8_t)(len >> 8);
    full[19] = (uint8_t)len;
    if (len > 0) memcpy(full + HEADER_BYTES, msg, len);
    memcpy(full + HEADER_BYTES + len, c->appid, c->appid_len);
    memset(full + total - pad, (int)pad, pad);

    int rc = WX_WECHAT_EENCRYPT_AES;
    if (aes_cbc_in_place(c->key, 1, full, total)) {
        b64_encode(full, total, out);
        *out_len = b64_encoded_len(total);
        rc = 0;
    }
    wx_wipe(full, total);
    free(full);
    return rc;
}

/* ---- decrypt ---------------------------------------------------------------------------- */

size_t wx_wechat_decrypt_cap(size_t b64_len)
{
    return b64_len / 4 * 3 + 1;
}

/*
 * Checks the decrypted FullStr in buf[0..len) and finds the message in it. Every length read
 * from the data is checked against what is there before it is used.
 */
static int check_full(const struct wx_wechat_crypt *c, const uint8_t *buf, size_t len,
                      size_t *msg_len)
{
    size_t pad = buf[len - 1];
    if (pad < 1 || pad > PAD_BLOCK || pad > len) return WX_WECHAT_EILLEGAL_BUFFER;
    uint8_t diff = 0;
    for (size_t i = len - pad; i < len; i++) {
        diff |= (uint8_t)(buf[i] ^ pad);
    }
    if (diff != 0) return WX_WECHAT_EILLEGAL_BUFFER;
    size_t n = len - pad;
    if (n < HEADER_BYTES) return WX_WECHAT_EILLEGAL_BUFFER;
    size_t ml = (size_t)buf[16] << 24 | (size_t)buf[17] << 16 | (size_t)buf[18] << 8 | buf[19];
    if (ml > n - HEADER_BYTES) return WX_WECHAT_EILLEGAL_BUFFER;
    size_t tail = n - HEADER_BYTES - ml;
    if (tail != c->appid_len ||
        CRYPTO_memcmp(buf + HEADER_BYTES + ml, c->appid, c->appid_len) != 0) {
        return WX_WECHAT_EVALIDATE_APPID;
    }
    *msg_len = ml;
    return 0;
}

int wx_wechat_decrypt(const struct wx_wechat_crypt *c, const char *b64, size_t b64_len, char *out,
                      size_t cap, size_t *msg_len)
{
    assert(c != NULL && out != NULL && msg_len != NULL);
    assert(b64 != NULL || b64_len == 0);
    if (b64_len > WX_WECHAT_BODY_MAX) return WX_WECHAT_EILLEGAL_BUFFER;
    if (cap < wx_wechat_decrypt_cap(b64_len)) return WX_WECHAT_ESPACE;

    /* Decode and decrypt in out itself: the message is a part of the ciphertext's length. */
    uint8_t *buf = (uint8_t *)out;
    size_t len = 0, ml = 0;
    int rc = WX_WECHAT_EDECODE_BASE64;
    if (!b64_decode(b64, b64_len, true, buf, &len)) goto out;
    /* Whole AES blocks; the platform always sends multiples of 32, but the pad check below is
     * what enforces the 32-byte rule, so a 16-byte remainder gets the same answer as any other
     * bad padding. */
    rc = WX_WECHAT_EDECRYPT_AES;
    if (len == 0 || len % AES_BLOCK != 0) goto out;
    if (!aes_cbc_in_place(c->key, 0, buf, len)) goto out;
    rc = check_full(c, buf, len, &ml);
    if (rc != 0) goto out;
    memmove(out, out + HEADER_BYTES, ml);
    out[ml] = '\0';
    wx_wipe(out + ml + 1, len - ml - 1); /* the appid and padding left behind */
    *msg_len = ml;
out:
    if (rc != 0) wx_wipe(out, b64_len / 4 * 3); /* all decode could have written */
    return rc;
}

int wx_wechat_decrypt_msg(const struct wx_wechat_crypt *c, const char *msg_signature,
                          const char *timestamp, const char *nonce, const char *encrypt, char *out,
                          size_t cap, size_t *msg_len)
{
    assert(c != NULL && msg_signature != NULL);
    assert(timestamp != NULL && nonce != NULL && encrypt != NULL);
    const char *parts[4] = {c->token, timestamp, nonce, encrypt};
    if (!wx_wechat_signature_ok(parts, 4, msg_signature)) return WX_WECHAT_EVALIDATE_SIGNATURE;
    size_t len = strnlen(encrypt, WX_WECHAT_BODY_MAX + 1);
    return wx_wechat_decrypt(c, encrypt, len, out, cap, msg_len);
}

/* ---- encrypted reply envelope ----------------------------------------------------------- */

/* True when s is 1..max characters, each accepted by ok. */
static bool text_ok(const char *s, size_t max, bool (*ok)(char))
{
    size_t n = strnlen(s, max + 1);
    if (n == 0 || n > max) return false;
    for (size_t i = 0; i < n; i++) {
        if (!ok(s[i])) return false;
    }
    return true;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

size_t wx_wechat_encrypt_reply_cap(const struct wx_wechat_crypt *c, size_t reply_len)
{
    return sizeof ENV_HEAD - 1 + (wx_wechat_encrypt_cap(c, reply_len) - 1) + sizeof ENV_SIG - 1 +
           WX_WECHAT_SIGNATURE_LEN + sizeof ENV_TIME - 1 + WX_WECHAT_TIMESTAMP_MAX +
           sizeof ENV_NONCE - 1 + WX_WECHAT_NONCE_MAX + sizeof ENV_TAIL - 1 + 1;
}

/* Copies the NUL-terminated s to p and returns the end of the copy. */
static char *put(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

int wx_wechat_encrypt_reply(const struct wx_wechat_crypt *c, const char *reply, size_t reply_len,
                            const char *timestamp, const char *nonce,
                            const uint8_t random[WX_WECHAT_RANDOM_LEN], char *out, size_t cap,
                            size_t *out_len)
{
    assert(c != NULL && timestamp != NULL && nonce != NULL && out != NULL && out_len != NULL);
    assert(reply != NULL || reply_len == 0);
    if (!text_ok(timestamp, WX_WECHAT_TIMESTAMP_MAX, is_digit) ||
        !text_ok(nonce, WX_WECHAT_NONCE_MAX, is_alnum_ascii)) {
        return WX_WECHAT_EGEN_RETURN_XML;
    }
    if (reply_len > WX_WECHAT_BODY_MAX || cap < wx_wechat_encrypt_reply_cap(c, reply_len)) {
        return WX_WECHAT_ESPACE;
    }
    /* The base64 text goes straight to its place in the envelope and is signed there. */
    char *enc = out + sizeof ENV_HEAD - 1;
    size_t enc_len = 0;
    int rc =
        wx_wechat_encrypt(c, reply, reply_len, random, enc, cap - (size_t)(enc - out), &enc_len);
    if (rc != 0) return rc;
    char sig[WX_WECHAT_SIGNATURE_LEN + 1];
    const char *parts[4] = {c->token, timestamp, nonce, enc};
    wx_wechat_signature(parts, 4, sig);

    char *p = put(out, ENV_HEAD) + enc_len;
    p = put(p, ENV_SIG);
    p = put(p, sig);
    p = put(p, ENV_TIME);
    p = put(p, timestamp);
    p = put(p, ENV_NONCE);
    p = put(p, nonce);
    p = put(p, ENV_TAIL);
    *p = '\0';
    *out_len = (size_t)(p - out);
    assert(*out_len < cap);
    return 0;
}
