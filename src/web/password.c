/*
 * password.c - the cardholder's two passwords: Argon2id hashes, and what a new one must be.
 *
 * Argon2id (RFC 9106; the OWASP first choice) with a random 16-byte salt and a 32-byte tag,
 * kept in the encoded form that carries its own parameters, so a bank can raise the cost
 * later and old hashes still verify. The default cost was measured on the 2-core machine
 * wxbank is built on (bench/RESULTS.md): m = 64 MiB, t = 2, p = 1 takes about 0.12 s of one
 * core and 64 MiB, which a login can afford and an offline guesser cannot (OWASP's floor is
 * 19 MiB with t = 2); a bank measures its own servers.
 *
 * The login password: 8 to 64 bytes of text, three kinds of character of four, none of the
 * cardholder's own identifiers in it. The transaction password: six digits that are not a
 * pattern anyone would try first (111111, 123456, 121212, 123123), nor the birth date, nor
 * the end of the mobile or ID number.
 */
#include "web/web_int.h"

#include <argon2.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/crypto.h"

#define SALT_LEN     16
#define TAG_LEN      32
#define COST_MEMORY  65536 /* KiB */
#define COST_TIME    2
#define COST_LANES   1
#define IDENTITY_MIN 4 /* an identifier shorter than this is not looked for */
#define CHAR_CLASSES 3 /* kinds of character a login password needs */

void wx_password_cost_default(struct wx_password_cost *cost)
{
    *cost = (struct wx_password_cost){
        .memory_kib = COST_MEMORY, .iterations = COST_TIME, .lanes = COST_LANES};
}

int wx_password_hash(const struct wx_password_cost *cost, const char *password, size_t len,
                     char out[WX_PASSWORD_HASH_MAX])
{
    uint8_t salt[SALT_LEN];
    wx_random_bytes(salt, sizeof salt);
    int rc = argon2id_hash_encoded(cost->iterations, cost->memory_kib, cost->lanes, password, len,
                                   salt, sizeof salt, TAG_LEN, out, WX_PASSWORD_HASH_MAX);
    return rc == ARGON2_OK ? 0 : -1;
}

bool wx_password_verify(const char *encoded, const char *password, size_t len)
{
    if (strncmp(encoded, "$argon2id$", 10) != 0) return false;
    return argon2id_verify(encoded, password, len) == ARGON2_OK;
}

/* ---- the login password ------------------------------------------------------------------- */

/* Whether s (len bytes) contains word, ignoring ASCII case. */
static bool contains(const char *s, size_t len, const char *word)
{
    size_t w = word != NULL ? strlen(word) : 0;
    if (w < IDENTITY_MIN) return false;
    for (size_t i = 0; i + w <= len; i++) {
        if (strncasecmp(s + i, word, w) == 0) return true;
    }
    return false;
}

static bool has_identity(const char *s, size_t len, const struct wx_password_person *who)
{
    return who != NULL && (contains(s, len, who->login) || contains(s, len, who->mobile) ||
                           contains(s, len, who->id_number));
}

enum wx_password_flaw wx_password_check_login(const char *password, size_t len,
                                              const struct wx_password_person *who)
{
    size_t chars;
    if (len > WX_PASSWORD_MAX) return WX_PW_TOO_LONG;
    if (memchr(password, '\0', len) != NULL || !web_is_text(password, len, &chars)) {
        return WX_PW_NOT_TEXT;
    }
    if (chars < WX_PASSWORD_MIN) return WX_PW_TOO_SHORT;
    bool lower = false, upper = false, digit = false, other = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)password[i];
        lower |= c >= 'a' && c <= 'z';
        upper |= c >= 'A' && c <= 'Z';
        digit |= c >= '0' && c <= '9';
        other |= !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9');
    }
    if (lower + upper + digit + other < CHAR_CLASSES) return WX_PW_TOO_SIMPLE;
    if (has_identity(password, len, who)) return WX_PW_HAS_IDENTITY;
    return WX_PW_OK;
}

/* ---- the transaction password --------------------------------------------------------------- */

/* 111111, 123456, 654321, 121212, 123123, 112233: digits anyone tries first. */
static bool weak_digits(const char *d)
{
    int step = d[1] - d[0];
    bool run = step >= -2 && step <= 2;
    for (int i = 2; i < WX_TXN_PASSWORD_LEN && run; i++)
        run = d[i] - d[i - 1] == step;
    if (run) return true; /* 111111, 123456, 654321: a constant step of at most 2 */
    bool seen[10] = {false};
    int distinct = 0;
    for (int i = 0; i < WX_TXN_PASSWORD_LEN; i++) {
        if (!seen[d[i] - '0']) distinct++;
        seen[d[i] - '0'] = true;
    }
    if (distinct <= 2) return true; /* 121212, 112211, 111222 */
    /* Keypad lines and Chinese number-words that lists of leaked PINs put near the top:
     * 147258 (a keypad column), 159357, 520131 (我爱你一生一世), 131420 (一生一世爱你). */
    static const char *const COMMON[] = {"135791", "147258", "258369", "369258", "159357",
                                         "159753", "753951", "520131", "520521", "131420"};
    for (size_t i = 0; i < sizeof COMMON / sizeof COMMON[0]; i++) {
        if (memcmp(d, COMMON[i], WX_TXN_PASSWORD_LEN) == 0) return true;
    }
    bool period3 = memcmp(d, d + 3, 3) == 0;                   /* 123123 */
    bool pairs = d[0] == d[1] && d[2] == d[3] && d[4] == d[5]; /* 112233 */
    return period3 || pairs;
}

/* The birth date (YYYYMMDD) as six digits: YYMMDD, MMDDYY, DDMMYY, or MMDD padded by year. */
static bool is_birth_date(const char *d, const char *birth)
{
    if (birth == NULL || strlen(birth) != 8) return false;
    char forms[4][WX_TXN_PASSWORD_LEN + 1];
    snprintf(forms[0], sizeof forms[0], "%.2s%.4s", birth + 2, birth + 4); /* YYMMDD */
    snprintf(forms[1], sizeof forms[1], "%.4s%.2s", birth + 4, birth + 2); /* MMDDYY */
    snprintf(forms[2], sizeof forms[2], "%.2s%.2s%.2s", birth + 6, birth + 4,
             birth + 2);                                    /* DDMMYY */
    snprintf(forms[3], sizeof forms[3], "%.6s", birth + 2); /* the last six of YYYYMMDD */
    for (int i = 0; i < 4; i++) {
        if (memcmp(d, forms[i], WX_TXN_PASSWORD_LEN) == 0) return true;
    }
    return false;
}

/* The last six digits of an identifier (a mobile, an ID number). */
static bool is_tail_of(const char *d, const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;
    return n >= WX_TXN_PASSWORD_LEN &&
           memcmp(d, id + n - WX_TXN_PASSWORD_LEN, WX_TXN_PASSWORD_LEN) == 0;
}

enum wx_password_flaw wx_password_check_txn(const char *password, size_t len,
                                            const struct wx_password_person *who)
{
    if (len != WX_TXN_PASSWORD_LEN) return WX_PW_NOT_DIGITS;
    for (size_t i = 0; i < len; i++) {
        if (password[i] < '0' || password[i] > '9') return WX_PW_NOT_DIGITS;
    }
    if (weak_digits(password)) return WX_PW_WEAK_DIGITS;
    if (who != NULL && is_birth_date(password, who->birth_date)) return WX_PW_BIRTH_DATE;
    if (who != NULL &&
        (is_tail_of(password, who->mobile) || is_tail_of(password, who->id_number))) {
        return WX_PW_HAS_IDENTITY;
    }
    return WX_PW_OK;
}

const char *wx_password_flaw_text(enum wx_password_flaw flaw, bool english)
{
    static const char *const TEXT[][2] = {
        [WX_PW_OK] = {"", ""},
        [WX_PW_TOO_SHORT] = {"密码至少8位", "at least 8 characters"},
        [WX_PW_TOO_LONG] = {"密码不能超过64个字节", "at most 64 bytes"},
        [WX_PW_NOT_TEXT] = {"密码含有无效字符", "it holds characters that cannot be used"},
        [WX_PW_TOO_SIMPLE] = {"须包含大写字母、小写字母、数字、符号中的至少三种",
                              "use at least three of: upper case, lower case, digits, symbols"},
        [WX_PW_HAS_IDENTITY] = {"不能包含您的登录名、手机号或证件号",
                                "it must not contain your login name, mobile or ID number"},
        [WX_PW_NOT_DIGITS] = {"交易密码须为6位数字", "the transaction password is 6 digits"},
        [WX_PW_WEAK_DIGITS] = {"交易密码过于简单（如123456、111111）",
                               "too easy to guess (like 123456 or 111111)"},
        [WX_PW_BIRTH_DATE] = {"交易密码不能是您的生日", "it must not be your birth date"},
    };
    if ((unsigned)flaw >= sizeof TEXT / sizeof TEXT[0]) flaw = WX_PW_NOT_TEXT;
    return TEXT[flaw][english ? 1 : 0];
}
