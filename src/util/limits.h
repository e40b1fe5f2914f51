/*
 * limits.h - every limit a peer or an operator can push against, in one place.
 *
 * Each limit has a name so that tests can probe just under and just over it, and so that an
 * error message can say which one was hit.
 */
#ifndef WX_LIMITS_H
#define WX_LIMITS_H

/* Money: amounts are int64 minor units (fen). 10^12 fen = 10 billion yuan per transaction. */
#define WX_AMOUNT_MAX 1000000000000LL
/* A credit limit (permanent or temporary) is bounded by the same figure. */
#define WX_LIMIT_MAX WX_AMOUNT_MAX

/* Idempotency keys from a source (ISO 8583 STAN+terminal+date, WeChat MsgId, ops id). */
#define WX_KEY_MAX 48

/* Customer fields. */
#define WX_NAME_MAX   64 /* bytes of UTF-8 */
#define WX_MOBILE_MAX 16 /* digits, optional leading '+' */
#define WX_ID_DOC_MAX 32 /* ID-document number as typed */

/* Card numbers: ISO/IEC 7812 lengths. */
#define WX_PAN_MIN     13
#define WX_PAN_MAX     19
#define WX_BIN_MIN     6
#define WX_BIN_MAX     8
#define WX_PAN_ENC_MAX 64 /* AES-256-GCM: 12 IV + up to 19 ciphertext + 16 tag */

/* Merchant description carried by authorizations (ISO 8583 field 43 layout). */
#define WX_MERCHANT_NAME_MAX 40
#define WX_MERCHANT_CITY_MAX 16
#define WX_TERMINAL_ID_MAX   16
#define WX_MERCHANT_ID_MAX   16

/* Engine capacity: ids are 32-bit; the tables refuse to grow past these. */
#define WX_CUSTOMERS_MAX 100000000u
#define WX_CARDS_MAX     100000000u
#define WX_RECORDS_MAX   1000000000u

/* Journal: one encoded decision row, and one group commit. */
#define WX_ROW_MAX           512
#define WX_BATCH_ROWS_MAX    16384
#define WX_BATCH_BYTES_MAX   (8u << 20)
#define WX_COMMIT_GAP_MAX_US 100000 /* least time between commits: at most 100 ms */

/* Store: the meta key/value table (settings that live with the data). */
#define WX_META_KEY_MAX   64
#define WX_META_VALUE_MAX (1u << 20)

/* Snapshots: how many snapshot files of one database a directory scan considers. */
#define WX_SNAPSHOT_FILES_MAX 4096

/* Config file. */
#define WX_CONFIG_FILE_MAX   (1u << 20)
#define WX_CONFIG_LINE_MAX   4096
#define WX_CONFIG_SECRET_MAX 4096
#define WX_CONFIG_KEY_MAX    64 /* full key "section.key", bytes */

/* Text forms typed by people (chat, CLI, ops API) before they are parsed. */
#define WX_AMOUNT_TEXT_MAX 32 /* "10,000,000,000.00" is 17 */
#define WX_PAN_TEXT_MAX    40 /* 19 digits with a separator between each */

/* ISO 8583 host (src/iso8583): what one switch connection may push against. */
#define WX_ISO_FRAME_MAX       4096         /* largest iso8583.frame_max (= WX_ISO_MSG_MAX) */
#define WX_ISO_FRAME_MIN       20           /* smallest iso8583.frame_max: an MTI and a bitmap */
#define WX_ISO_CONNECTIONS_MAX 65536        /* largest iso8583.max_connections */
#define WX_ISO_IDLE_MAX_S      86400        /* largest iso8583.idle_seconds */
#define WX_ISO_PIPELINE_MAX    1024         /* answers one connection may have waiting for disk */
#define WX_ISO_OUTBUF_MAX      (256u << 10) /* unread replies before we stop reading */
#define WX_ISO_INBUF_MAX       (64u << 10)  /* bytes read ahead of processing */

/* WeChat channel (src/wechat): what the platform, a follower or the sandbox may push. */
#define WX_OPENID_MAX               64          /* an OpenID is 28 characters today */
#define WX_FOLLOWERS_PER_CUSTOMER   5           /* WeChat accounts bound to one customer */
#define WX_WECHAT_BODY_MAX          (64u << 10) /* a webhook POST body */
#define WX_WECHAT_FIELD_MAX         8192        /* one XML field (Content: 2048 characters) */
#define WX_WECHAT_XML_DEPTH_MAX     4           /* <xml><Articles><item><Title> */
#define WX_WECHAT_QUERY_MAX         2048        /* the webhook's query string */
#define WX_WECHAT_REPLY_MAX         (16u << 10) /* a passive reply, before encryption */
#define WX_WECHAT_NEWS_MAX          8           /* articles in one news reply */
#define WX_WECHAT_DEDUP_BYTES       (64u << 20) /* replies remembered for the platform's retries */
#define WX_WECHAT_DEDUP_MAX         (1u << 22)  /* largest wechat.dedup_entries */
#define WX_WECHAT_JOBS_MAX          4096        /* answers waiting for the journal at once */
#define WX_WECHAT_HISTORY_WAITS_MAX 64          /* answers waiting for the history at once */
#define WX_WECHAT_HISTORY_EVERY_MS  200         /* the history projection follows this often */

/* HTTP (src/net): the shared listener for the webhook, ops API, metrics and sandbox. */
#define WX_HTTP_HEADERS_MAX (16u << 10) /* all request headers together */
#define WX_HTTP_BODY_MAX    (1u << 20)  /* any request body (routes set lower limits) */

/* Outbound HTTP (src/fetch). */
#define WX_FETCH_RESPONSE_MAX (4u << 20) /* largest response body kept */
#define WX_FETCH_INFLIGHT_MAX 4096       /* transfers at once; more wait in a queue */

/* One log line, including the timestamp prefix; longer messages are cut. */
#define WX_LOG_LINE_MAX 2048

#endif
