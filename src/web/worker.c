/*
 * worker.c - the pages' threads for slow work: one for Argon2 (a tenth of a second and 64 MiB
 * per password, by design) and the store (<db>.web) with its audit log, one for drawing
 * CAPTCHAs (a few milliseconds each, which must not wait behind a queue of password checks).
 *
 * The loop posts a job and goes on answering the card switch; the worker runs the jobs one at
 * a time, in order, and hands each back to the loop (wx_hub_post) to finish its page there.
 * One thread keeps the store single-threaded and bounds the memory Argon2 takes to one hash
 * at a time; at most WEB_JOBS_MAX wait, and a page past that is answered 503. The audit log
 * being written in order by the same thread that checks passwords means an entry is never
 * written before the check it records.
 */
#include "web/web_int.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/timeutil.h"

struct web_worker {
    wx_web_t *w;
    wx_web_store_t *store;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct web_job *head, *tail; /* waiting */
    unsigned waiting;
    bool stop;
};

static void finish(struct wx_hub_task *t, bool cancelled)
{
    struct web_job *j = (struct web_job *)((char *)t - offsetof(struct web_job, task));
    wx_web_t *w = j->w;
    assert(w->jobs_out > 0);
    w->jobs_out--;
    j->done(j, cancelled);
    if (!cancelled && w->stopping) wx_hub_settle(w->hub); /* shutdown waits for the pages */
}

static void *run(void *arg)
{
    struct web_worker *k = arg;
    pthread_mutex_lock(&k->mu);
    for (;;) {
        while (k->head == NULL && !k->stop)
            pthread_cond_wait(&k->cond, &k->mu);
        if (k->head == NULL) break; /* stopping, and nothing left */
        struct web_job *j = k->head;
        k->head = j->next;
        if (k->head == NULL) k->tail = NULL;
        k->waiting--;
        pthread_mutex_unlock(&k->mu);
        j->work(j, k->store);
        j->task.run = finish;
        wx_hub_post(k->w->hub, &j->task);
        pthread_mutex_lock(&k->mu);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

static void restore(void *ctx, uint32_t id, enum wx_password_kind kind, int64_t until_ms)
{
    wx_guard_restore(ctx, id, kind, until_ms);
}

/* With the store, opens it (and puts back the lockouts still in force) before the thread
 * starts. */
struct web_worker *web_worker_start(wx_web_t *w, bool with_store, char *err, size_t errlen)
{
    struct web_worker *k = wx_calloc(1, sizeof *k);
    k->w = w;
    if (with_store) {
        k->store = wx_web_store_open(w->opt.db_path, err, errlen);
        if (k->store == NULL) {
            free(k);
            return NULL;
        }
        char why[160];
        if (wx_web_store_locks(k->store, wx_now_ms(), restore, w->locks, why, sizeof why) != 0) {
            WX_WARN("web: lockouts from before the restart not read: %s", why);
        }
    }
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cond, NULL);
    if (pthread_create(&k->thread, NULL, run, k) != 0) {
        snprintf(err, errlen, "web: cannot start the worker thread");
        wx_web_store_close(k->store); /* NULL is nothing */
        pthread_mutex_destroy(&k->mu);
        pthread_cond_destroy(&k->cond);
        free(k);
        return NULL;
    }
    return k;
}

bool web_worker_post(struct web_worker *k, struct web_job *j)
{
    if (k == NULL) return false;
    j->w = k->w;
    j->next = NULL;
    pthread_mutex_lock(&k->mu);
    bool ok = !k->stop && k->waiting < WEB_JOBS_MAX;
    if (ok) {
        if (k->tail != NULL) {
            k->tail->next = j;
        } else {
            k->head = j;
        }
        k->tail = j;
        k->waiting++;
        pthread_cond_signal(&k->cond);
    }
    pthread_mutex_unlock(&k->mu);
    if (ok) k->w->jobs_out++;
    return ok;
}

/*
 * The thread finishes what it holds (the audit entries among it must be written), then
 * exits; the finished jobs' pages are then answered by the hub's discarding of posted tasks
 * (cancelled) or, while the loop still runs, normally.
 */
void web_worker_stop(struct web_worker *k)
{
    if (k == NULL) return;
    pthread_mutex_lock(&k->mu);
    k->stop = true;
    pthread_cond_signal(&k->cond);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thread, NULL);
    wx_web_store_close(k->store);
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cond);
    free(k);
}
