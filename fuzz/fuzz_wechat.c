/*
 * fuzz_wechat.c - libFuzzer target for the WeChat inbound path.
 *
 * A webhook body is read before anything about it is trusted: the XML parser and, for a
 * safe-mode envelope, base64 and AES framing all see attacker bytes. The input is parsed as a
 * message; whatever parses must have every field NUL-terminated within its slot, answer with
 * a reply that parses back with the addresses swapped; an Encrypt field is decrypted with a
 * fixed account (K1 / appid of README vector V1, so the seed envelopes decrypt) and the
 * plaintext parsed too. The raw input also goes straight to the decrypter as base64 text, and
 * round-trips through encrypt/decrypt unchanged.
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "wechat/wechat.h"

#define FUZZ_TOKEN "pamtest"
#define FUZZ_KEY   "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
#define FUZZ_APPID "wxb11529c136998cb6"
#define SLICE_MAX  4096 /* bytes of raw input fed to the decrypter */

static struct wx_wechat_crypt account;
static struct wx_wechat_msg msg, inner, back;
static char plain[WX_WECHAT_BODY_MAX + 1];
static char reply[WX_WECHAT_REPLY_MAX + 1];
static char enc[WX_WECHAT_REPLY_MAX * 2];

#define BOUNDED(s) assert(strnlen((s), sizeof(s)) < sizeof(s))

/* Every text slot ends inside itself, and the enums are in range. */
static void check_fields(const struct wx_wechat_msg *m)
{
    BOUNDED(m->to_user);
    BOUNDED(m->from_user);
    BOUNDED(m->msg_type_text);
    BOUNDED(m->msg_id_text);
    BOUNDED(m->content);
    BOUNDED(m->pic_url);
    BOUNDED(m->media_id);
    BOUNDED(m->format);
    BOUNDED(m->recognition);
    BOUNDED(m->thumb_media_id);
    BOUNDED(m->location_x_text);
    BOUNDED(m->label);
    BOUNDED(m->title);
    BOUNDED(m->description);
    BOUNDED(m->url);
    BOUNDED(m->event_text);
    BOUNDED(m->event_key);
    BOUNDED(m->ticket);
    BOUNDED(m->menu_id);
    BOUNDED(m->status);
    BOUNDED(m->encrypt);
    assert(m->msg_type <= WX_WECHAT_MSG_EVENT);
    assert(m->event <= WX_WECHAT_EVENT_TEMPLATESENDJOBFINISH);
    assert(m->create_time >= 0);
}

/* A plain message gets a text reply echoing its Content; the reply must read back. */
static void reply_round_trip(const struct wx_wechat_msg *m)
{
    if (!wx_wechat_msg_has(m, "MsgType")) return; /* an envelope has no sender to answer */
    int n = wx_wechat_reply_text(m, m->create_time, m->content, reply, sizeof reply);
    if (n < 0) return; /* too long for a reply */
    int rc = wx_wechat_msg_parse(reply, (size_t)n, &back, NULL);
    assert(rc == 0);
    assert(strcmp(back.to_user, m->from_user) == 0);
    assert(strcmp(back.from_user, m->to_user) == 0);
    /* XML turns a CR into LF on reading, so only CR-free text must come back byte for byte. */
    if (strchr(m->content, '\r') == NULL) assert(strcmp(back.content, m->content) == 0);
}

static void parse_inbound(const uint8_t *data, size_t size)
{
    if (wx_wechat_msg_parse(data, size, &msg, NULL) != 0) return;
    check_fields(&msg);
    reply_round_trip(&msg);
    if (!wx_wechat_msg_has(&msg, "Encrypt")) return;
    size_t len = 0;
    int rc =
        wx_wechat_decrypt(&account, msg.encrypt, strlen(msg.encrypt), plain, sizeof plain, &len);
    if (rc != 0) return;
    assert(len < sizeof plain && plain[len] == '\0');
    if (wx_wechat_msg_parse(plain, len, &inner, NULL) == 0) check_fields(&inner);
}

/* The input as base64 text, and as a message to encrypt and decrypt again. */
static void crypto_direct(const uint8_t *data, size_t size)
{
    size_t k = size < SLICE_MAX ? size : SLICE_MAX, len = 0;
    (void)wx_wechat_decrypt(&account, (const char *)data, k, plain, sizeof plain, &len);

    static const uint8_t random[WX_WECHAT_RANDOM_LEN] = "0123456789abcdef";
    if (size > WX_WECHAT_REPLY_MAX) return;
    size_t elen = 0;
    int rc = wx_wechat_encrypt(&account, data, size, random, enc, sizeof enc, &elen);
    assert(rc == 0);
    rc = wx_wechat_decrypt(&account, enc, elen, plain, sizeof plain, &len);
    assert(rc == 0);
    assert(len == size);
    assert(size == 0 || memcmp(plain, data, size) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (account.appid_len == 0) {
        int rc = wx_wechat_crypt_init(&account, FUZZ_TOKEN, FUZZ_KEY, FUZZ_APPID);
        assert(rc == 0);
    }
    parse_inbound(data, size);
    crypto_direct(data, size);
    return 0;
}
