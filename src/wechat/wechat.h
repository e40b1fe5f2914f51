/*
 * wechat.h - the WeChat Official Account channel: everything wxbank needs to speak the
 * platform's protocol as a server (signatures, safe-mode message crypto, inbound XML, passive
 * replies), then the webhook and the platform API client built on top of it.
 *
 * The protocol part below is pure: no sockets, no clocks, no randomness of its own (the 16
 * random bytes of an encryption come in as an argument) and no logging. Functions return a
 * code and the webhook logs it with its request id. The facts and the official test vectors
 * behind it are in ../shared/vectors/wechat/README.md.
 */
#ifndef WX_WECHAT_WECHAT_H
#define WX_WECHAT_WECHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat/chat.h"
#include "fetch/fetch.h"
#include "util/limits.h"

struct event_base;
struct wx_config;
typedef struct wx_hub wx_hub_t;
typedef struct wx_http wx_http_t;

/* ============================================================================================
 * Protocol: signatures, message crypto, XML
 * ========================================================================================= */

/* ---- Return codes ------------------------------------------------------------------------ */

/*
 * The codes of the official WXBizMsgCrypt samples, so logs read the same as every SDK's, and
 * one of our own for a caller's buffer that is too small (a bug or a limit, not the peer).
 */
enum wx_wechat_rc {
    WX_WECHAT_OK = 0,
    WX_WECHAT_EVALIDATE_SIGNATURE = -40001, /* signature or msg_signature does not match */
    WX_WECHAT_EPARSE_XML = -40002,          /* the body is not a message we accept */
    WX_WECHAT_ECOMPUTE_SIGNATURE = -40003,  /* (sample code; not returned here) */
    WX_WECHAT_EILLEGAL_AES_KEY = -40004,    /* EncodingAESKey not 43 chars of [A-Za-z0-9] */
    WX_WECHAT_EVALIDATE_APPID = -40005,     /* decrypted message is for another appid */
    WX_WECHAT_EENCRYPT_AES = -40006,        /* OpenSSL refused to encrypt */
    WX_WECHAT_EDECRYPT_AES = -40007,        /* ciphertext empty or not whole AES blocks */
    WX_WECHAT_EILLEGAL_BUFFER = -40008,     /* bad padding, short or inconsistent plaintext */
    WX_WECHAT_EENCODE_BASE64 = -40009,      /* (sample code; not returned here) */
    WX_WECHAT_EDECODE_BASE64 = -40010,      /* Encrypt is not strict standard base64 */
    WX_WECHAT_EGEN_RETURN_XML = -40011,     /* reply timestamp or nonce unfit for the reply */
    WX_WECHAT_ESPACE = -40100,              /* ours: output buffer too small, or input too long */
    WX_WECHAT_EARG = -40101,                /* ours: token or appid empty or too long */
};

/* A short English description of a code above ("ok" for 0, "unknown error" otherwise). */
const char *wx_wechat_strerror(int rc);

/* ---- Signatures (sign.c) ----------------------------------------------------------------- */

#define WX_WECHAT_SIGNATURE_LEN  40 /* hex SHA-1 */
#define WX_WECHAT_SIGN_PARTS_MAX 4  /* token, timestamp, nonce[, Encrypt or echostr] */

/*
 * out = lowercase hex of SHA-1 over the n parts sorted in strcmp (byte) order and joined with
 * nothing: the URL `signature` with (token, timestamp, nonce), the safe-mode `msg_signature`
 * with (token, timestamp, nonce, Encrypt). 1 <= n <= WX_WECHAT_SIGN_PARTS_MAX. The parts are
 * NUL-terminated; callers bound them (query and body limits) before they get here.
 */
void wx_wechat_signature(const char *const parts[], size_t n,
                         char out[WX_WECHAT_SIGNATURE_LEN + 1]);

/*
 * True when `signature` (as received, NUL-terminated) equals the signature of the parts. The
 * comparison takes the same time wherever the first difference is (CRYPTO_memcmp); a wrong
 * length is rejected at once (the length is public).
 */
bool wx_wechat_signature_ok(const char *const parts[], size_t n, const char *signature);

/* ---- Safe-mode message crypto (msgcrypt.c) ----------------------------------------------- */

#define WX_WECHAT_AES_KEY_TEXT_LEN 43 /* EncodingAESKey: base64 of 32 bytes without its '=' */
#define WX_WECHAT_RANDOM_LEN       16 /* random prefix of every encrypted message */
#define WX_WECHAT_TOKEN_MAX        32 /* the console allows 3..32 characters */
#define WX_WECHAT_APPID_MAX        32 /* an AppID (or a WeCom CorpID) is 18 characters */
#define WX_WECHAT_NONCE_MAX        64 /* a nonce we put in an encrypted reply */
#define WX_WECHAT_TIMESTAMP_MAX    20 /* digits of a TimeStamp we put in an encrypted reply */

/* The account's message-crypto settings (WXBizMsgCrypt's state). Wipe with _clear. */
struct wx_wechat_crypt {
    uint8_t key[32];                     /* AESKey; the IV is its first 16 bytes */
    char token[WX_WECHAT_TOKEN_MAX + 1]; /* the server-config Token, NUL-terminated */
    char appid[WX_WECHAT_APPID_MAX + 1]; /* our AppID: the tail of every FullStr */
    size_t token_len;                    /* strlen(token) */
    size_t appid_len;                    /* strlen(appid) */
};

/*
 * Decodes an EncodingAESKey: exactly 43 characters of [A-Za-z0-9], base64-decoded with one
 * '=' appended, giving 32 bytes. Returns 0, or WX_WECHAT_EILLEGAL_AES_KEY (key is zeroed).
 */
int wx_wechat_aes_key_parse(const char *encoding_aes_key, uint8_t key[32]);

/*
 * Fills c from the configuration. Returns 0, WX_WECHAT_EILLEGAL_AES_KEY, or WX_WECHAT_EARG
 * when token or appid is empty or longer than its maximum. On error c is wiped.
 */
int wx_wechat_crypt_init(struct wx_wechat_crypt *c, const char *token, const char *encoding_aes_key,
                         const char *appid);

/* Wipes the key and the token. */
void wx_wechat_crypt_clear(struct wx_wechat_crypt *c);

/*
 * Bytes of out needed by wx_wechat_encrypt for a msg_len-byte message: the base64 text of
 * 16 + 4 + msg_len + appid_len bytes padded up to a multiple of 32, plus a NUL.
 * msg_len <= WX_WECHAT_BODY_MAX (more is a caller bug: wx_wechat_encrypt refuses it).
 */
size_t wx_wechat_encrypt_cap(const struct wx_wechat_crypt *c, size_t msg_len);

/*
 * Encrypts msg (len bytes, len <= WX_WECHAT_BODY_MAX) as the platform does: base64 of
 * AES-256-CBC(random ‖ be32 len ‖ msg ‖ appid, PKCS#7 with a block of 32). `random` is the
 * 16-byte prefix: wx_random_bytes in production, fixed bytes in tests. Writes the base64 text
 * and a NUL to out, sets *out_len to its length. Returns 0, WX_WECHAT_ESPACE (len too long or
 * cap < wx_wechat_encrypt_cap), or WX_WECHAT_EENCRYPT_AES.
 */
int wx_wechat_encrypt(const struct wx_wechat_crypt *c, const void *msg, size_t len,
                      const uint8_t random[WX_WECHAT_RANDOM_LEN], char *out, size_t cap,
                      size_t *out_len);

/* Bytes of out that wx_wechat_decrypt needs for an Encrypt text of b64_len characters. */
size_t wx_wechat_decrypt_cap(size_t b64_len);

/*
 * Decrypts an Encrypt (or encrypted echostr) text of b64_len characters, checks its framing
 * and that it was made for our appid. On success out holds the message, NUL-terminated (it
 * may contain NULs itself), *msg_len its length, and 0 is returned. Errors:
 *   WX_WECHAT_EDECODE_BASE64   not strict base64 (alphabet, '=' padding, zero tail bits);
 *   WX_WECHAT_EDECRYPT_AES     decoded length 0 or not a multiple of 16;
 *   WX_WECHAT_EILLEGAL_BUFFER  pad not 1..32 equal bytes, fewer than 20 bytes left, or a
 *                              msg_len that runs past the end; also b64_len > BODY_MAX;
 *   WX_WECHAT_EVALIDATE_APPID  the bytes after the message are not our appid;
 *   WX_WECHAT_ESPACE           cap < wx_wechat_decrypt_cap(b64_len).
 * On error out is wiped: nothing decrypted is ever handed out unchecked. Without a verified
 * msg_signature the distinct codes are a padding oracle; use wx_wechat_decrypt_msg.
 */
int wx_wechat_decrypt(const struct wx_wechat_crypt *c, const char *b64, size_t b64_len, char *out,
                      size_t cap, size_t *msg_len);

/*
 * The inbound safe-mode path: checks msg_signature against (token, timestamp, nonce, encrypt)
 * first (WX_WECHAT_EVALIDATE_SIGNATURE), then wx_wechat_decrypt. encrypt is NUL-terminated,
 * exactly as it came (the Encrypt element, or the percent-decoded echostr).
 */
int wx_wechat_decrypt_msg(const struct wx_wechat_crypt *c, const char *msg_signature,
                          const char *timestamp, const char *nonce, const char *encrypt, char *out,
                          size_t cap, size_t *msg_len);

/* Bytes of out that wx_wechat_encrypt_reply needs for a reply (reply_len <= BODY_MAX). */
size_t wx_wechat_encrypt_reply_cap(const struct wx_wechat_crypt *c, size_t reply_len);

/*
 * The encrypted passive reply: encrypts reply (the plain reply XML) and wraps it as
 *   <xml>\n<Encrypt><![CDATA[E]]></Encrypt>\n<MsgSignature><![CDATA[S]]></MsgSignature>\n
 *   <TimeStamp>T</TimeStamp>\n<Nonce><![CDATA[N]]></Nonce>\n</xml>
 * (one line each, no trailing newline), S = signature of (token, T, N, E). timestamp is
 * 1..WX_WECHAT_TIMESTAMP_MAX digits in seconds; nonce 1..WX_WECHAT_NONCE_MAX characters of
 * [A-Za-z0-9] (anything else: WX_WECHAT_EGEN_RETURN_XML, so nothing needs escaping). Writes
 * the XML and a NUL to out. Returns 0 or the codes of wx_wechat_encrypt.
 */
int wx_wechat_encrypt_reply(const struct wx_wechat_crypt *c, const char *reply, size_t reply_len,
                            const char *timestamp, const char *nonce,
                            const uint8_t random[WX_WECHAT_RANDOM_LEN], char *out, size_t cap,
                            size_t *out_len);

/* ---- Inbound message XML (xml.c) --------------------------------------------------------- */

/*
 * Field caps. Text fields hold at most this many bytes, or characters (UTF-8 code points) where
 * the name says CHARS; longer is an error, never a silent cut.
 */
#define WX_WECHAT_USER_MAX          WX_OPENID_MAX /* ToUserName (gh_ id), FromUserName (OpenID) */
#define WX_WECHAT_WORD_MAX          64            /* MsgType, Event, Format, MenuId, Status */
#define WX_WECHAT_CONTENT_CHARS     2048          /* Content (the platform's own limit) */
#define WX_WECHAT_RECOGNITION_CHARS 1024          /* Recognition (speech to text of <= 60 s) */
#define WX_WECHAT_TITLE_CHARS       256           /* Title of a link */
#define WX_WECHAT_DESCRIPTION_CHARS 1024          /* Description of a link */
#define WX_WECHAT_LABEL_CHARS       256           /* Label: a location's address */
#define WX_WECHAT_URL_MAX           2048          /* PicUrl, Url */
#define WX_WECHAT_EVENT_KEY_MAX     1024          /* EventKey (a VIEW key is a menu URL) */
#define WX_WECHAT_MEDIA_ID_MAX      128           /* MediaId, ThumbMediaId (64 today) */
#define WX_WECHAT_TICKET_MAX        256           /* Ticket of a parametric QR code */
#define WX_WECHAT_NUMBER_MAX        32            /* text of Location_X/Y, Scale, Latitude... */
#define WX_WECHAT_MSGID_MAX         20            /* digits of a uint64 MsgId / MsgID */
/* Encrypt: base64 grows 4/3, so a plaintext whose Content is at its cap still fits. */
#define WX_WECHAT_ENCRYPT_MAX (2 * WX_WECHAT_FIELD_MAX)
/* Character caps are kept in buffers of 4 bytes per character (UTF-8's longest). */
#define WX_WECHAT_CHARS_BUF(chars) (4 * (chars) + 1)

enum wx_wechat_msg_type {
    WX_WECHAT_MSG_UNKNOWN = 0, /* MsgType absent or not one below (see msg_type_text) */
    WX_WECHAT_MSG_TEXT,
    WX_WECHAT_MSG_IMAGE,
    WX_WECHAT_MSG_VOICE,
    WX_WECHAT_MSG_VIDEO,
    WX_WECHAT_MSG_SHORTVIDEO,
    WX_WECHAT_MSG_LOCATION,
    WX_WECHAT_MSG_LINK,
    WX_WECHAT_MSG_EVENT,
};

enum wx_wechat_event {
    WX_WECHAT_EVENT_NONE = 0, /* no Event element */
    WX_WECHAT_EVENT_UNKNOWN,  /* an Event we do not handle (see event_text) */
    WX_WECHAT_EVENT_SUBSCRIBE,
    WX_WECHAT_EVENT_UNSUBSCRIBE,
    WX_WECHAT_EVENT_SCAN,
    WX_WECHAT_EVENT_CLICK,
    WX_WECHAT_EVENT_VIEW,
    WX_WECHAT_EVENT_LOCATION,
    WX_WECHAT_EVENT_TEMPLATESENDJOBFINISH,
};

/*
 * One inbound message or event, every field copied out of the XML. A text field absent from
 * the XML is "" and a number 0: wx_wechat_msg_has tells absent from empty. About 40 KiB, so
 * callers keep one per worker or allocate it; parsing allocates nothing per field.
 */
struct wx_wechat_msg {
    uint64_t present; /* one bit per field in the parser's table; ask wx_wechat_msg_has */

    /* Every message. */
    char to_user[WX_WECHAT_USER_MAX + 1];       /* ToUserName: our account's gh_ id */
    char from_user[WX_WECHAT_USER_MAX + 1];     /* FromUserName: the follower's OpenID */
    int64_t create_time;                        /* CreateTime, Unix seconds */
    enum wx_wechat_msg_type msg_type;           /* MsgType */
    char msg_type_text[WX_WECHAT_WORD_MAX + 1]; /* MsgType as sent (for unknown ones) */
    uint64_t msg_id;                            /* MsgId (messages, not events) */
    char msg_id_text[WX_WECHAT_MSGID_MAX + 1];  /* MsgId as sent: a dedupe key */

    /* text */
    char content[WX_WECHAT_CHARS_BUF(WX_WECHAT_CONTENT_CHARS)]; /* Content */
    /* image, voice, video, shortvideo */
    char pic_url[WX_WECHAT_URL_MAX + 1];       /* PicUrl (image) */
    char media_id[WX_WECHAT_MEDIA_ID_MAX + 1]; /* MediaId */
    char format[WX_WECHAT_WORD_MAX + 1];       /* Format of a voice: amr, speex */
    char recognition[WX_WECHAT_CHARS_BUF(WX_WECHAT_RECOGNITION_CHARS)]; /* Recognition */
    char thumb_media_id[WX_WECHAT_MEDIA_ID_MAX + 1];                    /* ThumbMediaId (video) */
    /* location */
    char location_x_text[WX_WECHAT_NUMBER_MAX + 1];         /* Location_X: latitude, as sent */
    char location_y_text[WX_WECHAT_NUMBER_MAX + 1];         /* Location_Y: longitude, as sent */
    char scale_text[WX_WECHAT_NUMBER_MAX + 1];              /* Scale: map zoom, as sent */
    double location_x, location_y, scale;                   /* the three parsed */
    char label[WX_WECHAT_CHARS_BUF(WX_WECHAT_LABEL_CHARS)]; /* Label: the address */
    /* link */
    char title[WX_WECHAT_CHARS_BUF(WX_WECHAT_TITLE_CHARS)];             /* Title */
    char description[WX_WECHAT_CHARS_BUF(WX_WECHAT_DESCRIPTION_CHARS)]; /* Description */
    char url[WX_WECHAT_URL_MAX + 1];                                    /* Url */

    /* event */
    enum wx_wechat_event event;                   /* Event */
    char event_text[WX_WECHAT_WORD_MAX + 1];      /* Event as sent (case-sensitive) */
    char event_key[WX_WECHAT_EVENT_KEY_MAX + 1];  /* EventKey: menu key, URL, qrscene_... */
    char ticket[WX_WECHAT_TICKET_MAX + 1];        /* Ticket of a parametric QR code */
    char menu_id[WX_WECHAT_WORD_MAX + 1];         /* MenuId of a VIEW (text: ids are opaque) */
    char latitude_text[WX_WECHAT_NUMBER_MAX + 1]; /* LOCATION event, as sent */
    char longitude_text[WX_WECHAT_NUMBER_MAX + 1];
    char precision_text[WX_WECHAT_NUMBER_MAX + 1];
    double latitude, longitude, precision;              /* the three parsed */
    uint64_t template_msg_id;                           /* MsgID of TEMPLATESENDJOBFINISH */
    char template_msg_id_text[WX_WECHAT_MSGID_MAX + 1]; /* MsgID as sent */
    char status[WX_WECHAT_WORD_MAX + 1]; /* Status: success, failed:user block, ... */

    /* safe and compatible mode */
    char encrypt[WX_WECHAT_ENCRYPT_MAX + 1]; /* Encrypt: base64, exactly as sent */
};

/* Why a body was rejected: "xml: DOCTYPE not allowed", "xml: Content longer than ...". */
struct wx_wechat_xml_error {
    char why[160];
};

/*
 * Parses an inbound body (len <= WX_WECHAT_BODY_MAX bytes, UTF-8) into m. Rules: the root is
 * <xml>; elements nest at most WX_WECHAT_XML_DEPTH_MAX deep; no DOCTYPE, entity declaration,
 * external entity or processing instruction; the known fields (children of <xml>, names
 * case-sensitive) appear at most once, hold only text within their cap, and numbers are plain
 * decimal; other elements are ignored; a plain message has ToUserName, FromUserName,
 * CreateTime and MsgType (and Event when it is an event); a safe-mode envelope has Encrypt.
 * Returns 0, or WX_WECHAT_EPARSE_XML with err->why saying what (err may be NULL); m is then
 * only partly filled and must not be used.
 */
int wx_wechat_msg_parse(const void *body, size_t len, struct wx_wechat_msg *m,
                        struct wx_wechat_xml_error *err);

/*
 * A parser kept for many bodies, for a caller that parses often (the webhook): creating an
 * expat parser costs a dozen allocations and, without a salt, a getrandom call, and zeroing a
 * whole struct wx_wechat_msg costs 40 KiB of writes. hash_salt seeds expat's hash tables
 * (random, from the caller: this part has no randomness of its own; 0 lets expat draw a new
 * one per body). NULL when out of memory. One parser serves one thread at a time.
 */
typedef struct wx_wechat_parser wx_wechat_parser_t;
wx_wechat_parser_t *wx_wechat_parser_new(unsigned long hash_salt);
void wx_wechat_parser_free(wx_wechat_parser_t *p);

/*
 * wx_wechat_msg_parse with a reused parser, and the same rules and results. m must be all
 * zeros (calloc) or have last been filled by this function, ok or not, and left unchanged
 * since: only what that parse wrote is cleared, not all of m.
 */
int wx_wechat_parser_parse(wx_wechat_parser_t *p, const void *body, size_t len,
                           struct wx_wechat_msg *m, struct wx_wechat_xml_error *err);

/* True when the XML carried the element `name` ("MsgId", "Encrypt", ...; case-sensitive). */
bool wx_wechat_msg_has(const struct wx_wechat_msg *m, const char *name);

/* The MsgType / Event text for an enum value ("text", "TEMPLATESENDJOBFINISH"; "" unknown). */
const char *wx_wechat_msg_type_name(enum wx_wechat_msg_type t);
const char *wx_wechat_event_name(enum wx_wechat_event e);

/* ---- Passive replies (reply.c) ----------------------------------------------------------- */

/* One article of a news reply; a NULL member is written as empty. */
struct wx_wechat_article {
    const char *title;
    const char *description;
    const char *pic_url; /* JPG or PNG, 360x200 (first) or 200x200 */
    const char *url;     /* opened when the article is tapped */
};

/*
 * Passive reply builders. Each answers the inbound message `in`: the reply's ToUserName is
 * in->from_user and its FromUserName in->to_user. create_time is Unix seconds from the
 * caller's clock. Text goes into CDATA sections with any "]]>" split across two. The XML and
 * a NUL are written to out; the return value is the XML's length, or -1 when it is longer
 * than WX_WECHAT_REPLY_MAX or does not fit in cap (with its NUL), or when a text holds a
 * control character that XML 1.0 cannot carry (anything below 0x20 but tab, LF and CR).
 */
int wx_wechat_reply_text(const struct wx_wechat_msg *in, int64_t create_time, const char *content,
                         char *out, size_t cap);

/* n is 1..WX_WECHAT_NEWS_MAX (the platform shows one article when answering a message). */
int wx_wechat_reply_news(const struct wx_wechat_msg *in, int64_t create_time,
                         const struct wx_wechat_article *articles, size_t n, char *out, size_t cap);

/* media_id: an image uploaded beforehand (temporary or permanent media). */
int wx_wechat_reply_image(const struct wx_wechat_msg *in, int64_t create_time, const char *media_id,
                          char *out, size_t cap);

/* Hands the conversation to the human agents of the customer-service system. */
int wx_wechat_reply_transfer_customer_service(const struct wx_wechat_msg *in, int64_t create_time,
                                              char *out, size_t cap);

/* ============================================================================================
 * Webhook (webhook.c): /wechat on the bank's HTTP listener
 *
 * GET answers the platform's URL check; POST takes one message or event (plain, compatible or
 * safe mode), verified before anything is read, remembered so that the platform's retries get
 * the first answer, handed to the conversation (src/chat), and answered with a passive reply
 * that leaves only once the state it shows is durable.
 * ========================================================================================= */

typedef struct wx_webhook wx_webhook_t;
typedef struct wx_wechat_api wx_wechat_api_t;

struct wx_webhook_options {
    const char *token;           /* wechat.token: signs every request */
    const char *appid;           /* wechat.appid: inside every encrypted message */
    const char *aes_key;         /* wechat.aes_key; "" = plain mode only */
    const char *account;         /* wechat.account (gh_...); "" = not checked */
    unsigned timestamp_skew_s;   /* wechat.timestamp_skew_s; 0 = not checked */
    uint32_t dedup_entries;      /* wechat.dedup_entries */
    unsigned dedup_ttl_s;        /* wechat.dedup_ttl_s */
    unsigned reply_deadline_ms;  /* wechat.reply_deadline_ms: later answers go as messages */
    bool encrypted_only;         /* wechat.mode compat or safe: plain messages are refused */
    struct wx_chat_options chat; /* chat.*: the conversation; all zero: the defaults */
    const char *history_db;      /* the journal's path: statements and transactions are read
                                    from its history projection; NULL: not answered */
};

struct wx_webhook_stats {
    uint64_t processed; /* messages answered for the first time */
    uint64_t repeats;   /* retries answered from memory */
    uint64_t refused;   /* 4xx/5xx: bad signature, malformed, ... */
    uint64_t late;      /* answered "success" at the deadline, the answer sent as a message */
};

int wx_webhook_options_from_config(const struct wx_config *cfg, struct wx_webhook_options *opt,
                                   char *err, size_t errlen);
/* Serves /wechat on http. api (may be NULL) sends the answers that miss the platform's
 * deadline as customer-service messages. NULL with a message in err on a bad option. */
wx_webhook_t *wx_webhook_start(wx_hub_t *hub, wx_http_t *http, wx_wechat_api_t *api,
                               const struct wx_webhook_options *opt, char *err, size_t errlen);
void wx_webhook_free(wx_webhook_t *w);

/* Who hears WeChat's delivery reports on template messages (TEMPLATESENDJOBFINISH): fn runs
 * on the hub's loop with the follower, the message's MsgID and its Status ("success",
 * "failed:user block", "failed: system failed"). Set before wx_hub_run. */
typedef void (*wx_webhook_report_fn)(void *arg, const char *openid, uint64_t msgid,
                                     const char *status);
void wx_webhook_on_report(wx_webhook_t *w, wx_webhook_report_fn fn, void *arg);
/* Who makes the conversation's one-time links to the secure pages (wx_chat_set_links): fn
 * runs on the hub's loop, where the conversation answers. Set before wx_hub_run. */
void wx_webhook_set_links(wx_webhook_t *w, wx_chat_link_fn fn, void *arg);
void wx_webhook_stats(const wx_webhook_t *w, struct wx_webhook_stats *out);

/* ============================================================================================
 * Platform API client (api.c): the access token and the calls the bank makes, on the loop
 * ========================================================================================= */

#define WX_WECHAT_ACCESS_TOKEN_MAX    512        /* the platform says: keep room for 512 */
#define WX_WECHAT_MEDIA_MAX           (2u << 20) /* an uploaded image */
#define WX_WECHAT_TEMPLATE_FIELDS_MAX 16

typedef struct wx_wechat_api wx_wechat_api_t;

struct wx_wechat_api_options {
    const char *base;  /* wechat.api_base, e.g. https://api.weixin.qq.com */
    const char *appid; /* wechat.appid */
    const char *secret;
    unsigned timeout_ms;   /* per attempt */
    unsigned max_attempts; /* attempts of one call, >= 1 */
    unsigned max_time_ms;  /* a call gives up after this long, back-offs included */
};

enum wx_wechat_api_class {
    WX_WECHAT_API_OK = 0,
    WX_WECHAT_API_RETRYABLE = 1, /* try again later (busy, quota, 5xx, no answer) */
    WX_WECHAT_API_PERMANENT = 2, /* will not work (not a follower, refused, bad OpenID) */
};

struct wx_wechat_api_result {
    enum wx_wechat_api_class cls;
    long errcode;         /* the platform's errcode; 0 for ok and for transport failures */
    char errmsg[128];     /* the platform's errmsg, or what went wrong */
    bool outcome_unknown; /* no answer came: the platform may have acted */
    unsigned attempts;
    uint64_t msgid;                            /* template send */
    char media_id[WX_WECHAT_MEDIA_ID_MAX + 1]; /* media upload */
    char openid[WX_OPENID_MAX + 1];            /* OAuth */
};

typedef void (*wx_wechat_api_cb)(const struct wx_wechat_api_result *r, void *arg);

struct wx_wechat_api_stats {
    uint64_t tokens;                   /* access tokens fetched */
    uint64_t calls;                    /* attempts sent */
    uint64_t retries;                  /* attempts after a retryable failure */
    uint64_t ok, retryable, permanent; /* calls finished, by class */
};

struct wx_wechat_template_field {
    const char *name; /* "keyword1" (the template's {{keyword1.DATA}}) */
    const char *value;
};

struct wx_wechat_template {
    const char *openid;
    const char *template_id;
    const char *url;           /* opened when tapped; may be NULL */
    const char *client_msg_id; /* idempotency: the platform sends it once in 10 min */
    const struct wx_wechat_template_field *fields;
    size_t nfields;
};

void wx_wechat_api_options_from_config(const struct wx_config *cfg,
                                       struct wx_wechat_api_options *opt);
wx_wechat_api_t *wx_wechat_api_new(struct event_base *base, wx_fetch_t *fetch,
                                   const struct wx_wechat_api_options *opt);
void wx_wechat_api_free(wx_wechat_api_t *api);
int wx_wechat_api_template_send(wx_wechat_api_t *api, const struct wx_wechat_template *t,
                                wx_wechat_api_cb cb, void *arg);
int wx_wechat_api_custom_text(wx_wechat_api_t *api, const char *openid, const char *text,
                              wx_wechat_api_cb cb, void *arg);
int wx_wechat_api_custom_news(wx_wechat_api_t *api, const char *openid,
                              const struct wx_wechat_article *a, wx_wechat_api_cb cb, void *arg);
int wx_wechat_api_custom_image(wx_wechat_api_t *api, const char *openid, const char *media_id,
                               wx_wechat_api_cb cb, void *arg);
int wx_wechat_api_menu_create(wx_wechat_api_t *api, const char *menu_json, wx_wechat_api_cb cb,
                              void *arg);
int wx_wechat_api_media_upload(wx_wechat_api_t *api, const char *filename, const char *content_type,
                               const void *data, size_t len, wx_wechat_api_cb cb, void *arg);
int wx_wechat_api_oauth_openid(wx_wechat_api_t *api, const char *code, wx_wechat_api_cb cb,
                               void *arg);
void wx_wechat_api_stats(const wx_wechat_api_t *api, struct wx_wechat_api_stats *out);
const char *wx_wechat_api_class_name(enum wx_wechat_api_class c);

#endif
