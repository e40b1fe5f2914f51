/*
 * service.c - the history projection followed and questioned on a thread of its own.
 *
 * A server's loop must not wait for SQLite: catching the projection up after a burst of
 * card traffic takes as long as the burst was big, and a question scans an account's
 * items. So one thread does both, in turns: catch up (every every_ms, and before each batch
 * of questions: an answer includes every decision made before it was asked), then run the
 * questions queued meanwhile. A question hands its own result back (a hub task), so this
 * file knows nothing of loops.
 */
#include "history/history.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/alloc.h"
#include "util/log.h"

struct wx_history_service {
    char db_path[4096];
    unsigned every_ms;
    wx_history_reader_t *reader; /* the thread's */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct wx_history_job *head, *tail; /* under mu */
    bool stopping;                      /* under mu */
    bool failing;                       /* the thread's: the last catch-up failed (logged once) */
};

static void catch_up(struct wx_history_service *s)
{
    char err[512];
    if (wx_history_reader_catch_up(s->reader, s->db_path, err, sizeof err) == 0) {
        if (s->failing) WX_INFO("history: catching up again");
        s->failing = false;
        return;
    }
    if (!s->failing) WX_ERROR("history: %s (answers may miss the newest decisions)", err);
    s->failing = true;
}

/* Waits for questions, the next turn, or the stop; returns the questions taken (mu held). */
static struct wx_history_job *wait_turn(struct wx_history_service *s)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)(s->every_ms % 1000) * 1000000L;
    until.tv_sec += s->every_ms / 1000 + until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    while (!s->stopping && s->head == NULL) {
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT) break;
    }
    struct wx_history_job *jobs = s->head;
    s->head = s->tail = NULL;
    return jobs;
}

static void *service_main(void *arg)
{
    struct wx_history_service *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        struct wx_history_job *jobs = wait_turn(s);
        bool stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        if (!stopping) catch_up(s);
        while (jobs != NULL) {
            struct wx_history_job *j = jobs;
            jobs = j->next;
            j->run(stopping ? NULL : s->reader, j, stopping);
        }
        pthread_mutex_lock(&s->mu);
    }
    struct wx_history_job *left = s->head;
    s->head = s->tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (left != NULL) {
        struct wx_history_job *j = left;
        left = j->next;
        j->run(NULL, j, true);
    }
    return NULL;
}

wx_history_service_t *wx_history_service_start(const char *db_path, unsigned every_ms, char *err,
                                               size_t errlen)
{
    struct wx_history_service *s = wx_calloc(1, sizeof *s);
    snprintf(s->db_path, sizeof s->db_path, "%s", db_path);
    s->every_ms = every_ms > 0 ? every_ms : 1;
    s->reader = wx_history_reader_open(db_path, err, errlen);
    if (s->reader == NULL) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL, service_main, s) != 0) WX_FATAL("history: no thread");
    return s;
}

void wx_history_service_ask(wx_history_service_t *s, struct wx_history_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&s->mu);
    bool stopping = s->stopping;
    if (!stopping) {
        if (s->tail != NULL) {
            s->tail->next = job;
        } else {
            s->head = job;
        }
        s->tail = job;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    if (stopping) job->run(NULL, job, true);
}

void wx_history_service_stop(wx_history_service_t *s)
{
    if (s == NULL) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    wx_history_reader_close(s->reader);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
