/*
 * addr.c - listener addresses: "HOST:PORT" in, "HOST:PORT" out.
 */
#include "net/net.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int wx_net_resolve(const char *listen, struct sockaddr_storage *ss, unsigned *len, char *err,
                   size_t errlen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    size_t hl = colon != NULL ? (size_t)(colon - listen) : 0;
    const char *h = listen;
    if (hl >= 2 && listen[0] == '[') {
        h++;
        hl -= 2;
    }
    if (colon == NULL || hl >= sizeof host) {
        snprintf(err, errlen, "%s: not HOST:PORT", listen);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0 || ai == NULL) {
        snprintf(err, errlen, "%s: %s", listen, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = (unsigned)ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

void wx_net_local_address(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[NI_MAXHOST], port[NI_MAXSERV];
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
        getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(out, cap, "?");
        return;
    }
    bool v6 = ss.ss_family == AF_INET6;
    snprintf(out, cap, "%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
}
