/*
 * tls_int.h - the TLS context behind wx_tls_t (internal to src/net).
 *
 * tls.c builds it from the certificate and key files with the listener's fixed policy;
 * http.c makes one SSL object per accepted HTTPS connection from it. Kept apart from net.h
 * so that nothing outside src/net sees OpenSSL's types through the listener's interface.
 */
#ifndef WX_NET_TLS_INT_H
#define WX_NET_TLS_INT_H

#include <openssl/ssl.h>

#include "net/net.h"

struct wx_tls {
    SSL_CTX *ctx; /* shared by every I/O thread: SSL_new on it is thread-safe */
};

#endif
