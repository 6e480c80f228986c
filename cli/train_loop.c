/* The training loop (see train_loop.h). Every rank runs the same iterations; only the lead
 * (rank 0) writes the metrics, the progress, the checkpoints and the summary. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "train_loop.h"

/* Set by SIGINT/SIGTERM: the loop finishes its step, saves, and stops. CLI-only state. */
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

void train_catch_signals(void)
{
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
}

int train_stop_requested(void) { return stop_requested != 0; }

int train_rank_error(const train_loop *L, const esm_err *err)
{
    if (esm_dist_size(L->dist) <= 1)
        return cli_error(err);
    esm_err e = *err;
    snprintf(e.msg, sizeof e.msg, "rank %d of %d: %.480s", esm_dist_rank(L->dist), esm_dist_size(L->dist),
             err->msg[0] ? err->msg : esm_status_name(err->code));
    return cli_error(&e);
}

int train_local_error(const train_loop *L, const esm_err *err)
{
    int rc = train_rank_error(L, err);
    esm_dist_abort(L->dist, rc);
    return rc;
}

static double elapsed(const train_loop *L) { return L->rd.elapsed_offset + cli_now() - L->start; }

static void write_step(train_loop *L, const esm_train_stats *s, double step_s, uint64_t comm_bytes, double comm_s)
{
    FILE *f = run_dir_line(&L->rd);
    int es = esm_trainer_config(L->t)->trainer == ESM_TRAINER_ES;
    fprintf(f, "{\"step\":%lld,\"%s\":%lld,\"loss\":", (long long)s->step, es ? "generation" : "episode",
            (long long)s->step);
    cli_json_num(f, s->loss);
    fputs(",\"acc\":", f);
    cli_json_num(f, s->acc);
    fputs(",\"lr\":", f);
    cli_json_num(f, s->lr);
    if (es) {
        fputs(",\"fitness_mean\":", f), cli_json_num(f, s->fitness_mean);
        fputs(",\"fitness_max\":", f), cli_json_num(f, s->fitness_max);
        fputs(",\"update_norm\":", f), cli_json_num(f, s->update_norm);
        fputs(",\"sigma\":", f), cli_json_num(f, s->sigma);
        fprintf(f, ",\"nonfinite\":%d", s->n_nonfinite);
        if (s->has_centre) {
            fputs(",\"centre_loss\":", f), cli_json_num(f, s->centre_loss);
            fputs(",\"centre_acc\":", f), cli_json_num(f, s->centre_acc);
        }
    }
    fprintf(f, ",\"comm_bytes\":%llu,\"comm_s\":%.6f", (unsigned long long)comm_bytes, comm_s);
    if (es)
        fprintf(f, ",\"eval_s\":%.6f,\"update_s\":%.6f,\"update_cpu_s\":%.6f", s->eval_s, s->update_s,
                s->update_cpu_s);
    fputs(",\"images_per_s\":", f);
    cli_json_num(f, step_s > 0 ? s->images / step_s : NAN);
    fprintf(f, ",\"elapsed_s\":%.3f}\n", elapsed(L));
    run_dir_line_end(&L->rd);
}

static void progress(train_loop *L, const esm_train_stats *s, int force)
{
    double now = cli_now();
    if (!L->lead || L->a->quiet || (!force && now - L->last_progress < 2.0))
        return;
    L->last_progress = now;
    int64_t total = esm_trainer_config(L->t)->steps, ran = s->step - L->first_step;
    double el = elapsed(L);
    /* time left at this process's mean rate so far (evaluations and saves included) */
    double left = ran > 0 ? (now - L->start) / (double)ran * (double)(total - s->step) : NAN;
    fprintf(stderr, "%s %lld/%lld  loss %.4f  acc %.4f  lr %.3g  %.0f img/s  %.0fs elapsed",
            esm_trainer_config(L->t)->trainer == ESM_TRAINER_ES ? "generation" : "episode", (long long)s->step,
            (long long)total, s->loss, s->acc, s->lr, L->last_step_s > 0 ? s->images / L->last_step_s : 0.0, el);
    if (isfinite(left) && s->step < total)
        fprintf(stderr, "  ~%.0fs left", left);
    fputc('\n', stderr);
}

esm_episode_shape train_eval_shape(const train_args *a)
{
    return (esm_episode_shape){(int)a->eval_way, (int)a->eval_shot, (int)a->eval_query};
}

static int run_eval(train_loop *L, esm_err *err)
{
    const train_args *a = L->a;
    esm_model_view m = esm_trainer_model(L->t);
    esm_eval_result r;
    esm_episode_shape shape = train_eval_shape(a);
    if (esm_evaluate(&m.net, m.params, m.bn_running, L->ds, &L->eval_sp, shape, (int)a->eval_episodes, 0, 0, &r,
                     err) != ESM_OK) {
        cli_eval_field_flags(err);
        return 0;
    }
    int64_t step = esm_trainer_steps_done(L->t);
    FILE *f = run_dir_line(&L->rd);
    fprintf(f, "{\"step\":%lld,\"eval_split\":", (long long)step);
    cli_json_str(f, a->eval_split);
    fprintf(f, ",\"held_out\":%s", L->eval_held_out ? "true" : "false");
    fprintf(f, ",\"eval_way\":%d,\"eval_shot\":%d,\"eval_episodes\":%d,\"eval_acc\":%.6f,\"eval_ci95\":%.6f,"
            "\"elapsed_s\":%.3f}\n", shape.way, shape.shot, r.episodes, r.mean_acc, r.ci95, elapsed(L));
    run_dir_line_end(&L->rd);
    if (!run_dir_flush(&L->rd, err))
        return 0;
    if (!a->quiet)
        fprintf(stderr, "  eval on %s%s after %lld steps: %.2f%% +- %.2f%%\n", a->eval_split,
                L->eval_held_out ? "" : " (classes seen in training)", (long long)step, 100 * r.mean_acc, 100 * r.ci95);
    return 1;
}

/* Collective: compares the ranks' states, then the lead saves. 0 and a message on failure. */
static int save_point(train_loop *L, int *rc, esm_err *err)
{
    if (esm_trainer_check_dist(L->t, err) != ESM_OK) {
        *rc = train_rank_error(L, err);
        return 0;
    }
    if (L->lead && esm_trainer_save(L->t, L->rd.ckpt, err) != ESM_OK) {
        *rc = train_local_error(L, err);
        return 0;
    }
    return 1;
}

/* Writes what the lead writes after a step; 0 (after aborting the job) if the metrics or the
 * eval failed. */
static int after_step(train_loop *L, const esm_train_stats *s, double dt, esm_err *err)
{
    if (!L->lead)
        return 1;
    /* Everything since the last line: the step, the stop flag and any state check or save. */
    uint64_t bytes = esm_dist_bytes_sent(L->dist);
    double comm = esm_dist_comm_seconds(L->dist);
    L->last_step_s = dt;
    write_step(L, s, dt, bytes - L->bytes_logged, comm - L->comm_logged);
    L->bytes_logged = bytes;
    L->comm_logged = comm;
    if (!run_dir_flush(&L->rd, err)) {
        train_local_error(L, err);
        return 0;
    }
    progress(L, s, 0);
    int64_t done = esm_trainer_steps_done(L->t);
    if (L->has_eval_sp && L->a->eval_every > 0 && done % L->a->eval_every == 0 && !run_eval(L, err)) {
        train_local_error(L, err);
        return 0;
    }
    return 1;
}

static void summary(train_loop *L, const esm_train_stats *s)
{
    const esm_train_config *cfg = esm_trainer_config(L->t);
    if (s->step > 0)
        progress(L, s, 1);
    printf("{\"run\":");
    cli_json_str(stdout, L->rd.dir);
    printf(",\"trainer\":\"%s\",\"steps\":%lld,\"of\":%lld,\"ranks\":%d,\"loss\":",
           esm_trainer_kind_name(cfg->trainer), (long long)esm_trainer_steps_done(L->t), (long long)cfg->steps,
           esm_dist_size(L->dist));
    cli_json_num(stdout, s->loss);
    printf(",\"acc\":");
    cli_json_num(stdout, s->acc);
    printf(",\"elapsed_s\":%.3f,\"interrupted\":%s,\"time_limited\":%s}\n", elapsed(L), L->stopped ? "true" : "false",
           L->time_up ? "true" : "false");
}

/* 2: a signal asked to stop; 1: the next step would end past --time-limit (judged by the last
 * step's time); 0: go on. */
static int stop_wish(const train_loop *L)
{
    if (stop_requested)
        return 2;
    double limit = L->a->time_limit;
    return limit > 0 && cli_now() - L->start + L->last_step_s > limit ? 1 : 0;
}

/* Every rank runs the same iterations: the stop flag is agreed on (a signal wins over the clock). */
int train_loop_run(train_loop *L, esm_err *err)
{
    const esm_train_config *cfg = esm_trainer_config(L->t);
    esm_train_stats s = {0};
    int rc = 0;
    L->bytes_logged = esm_dist_bytes_sent(L->dist);
    L->comm_logged = esm_dist_comm_seconds(L->dist);
    for (;;) {
        int wish;
        if (esm_dist_max_int(L->dist, stop_wish(L), &wish, err) != ESM_OK)
            return train_rank_error(L, err);
        L->stopped = wish == 2;
        L->time_up = wish == 1;
        if (wish || esm_trainer_steps_done(L->t) >= cfg->steps)
            break;
        double t0 = cli_now();
        esm_status st = esm_trainer_step(L->t, &s, err);
        if (st == ESM_ENONFINITE && L->lead) {
            /* The failed step changed nothing, so the state saved here is the last good one. */
            esm_err serr;
            if (esm_trainer_save(L->t, L->rd.ckpt, &serr) != ESM_OK)
                fprintf(stderr, "esmeta: could not save %s: %s\n", L->rd.ckpt, serr.msg);
        }
        if (st != ESM_OK)
            return train_rank_error(L, err); /* every rank saw the same failure */
        if (!after_step(L, &s, cli_now() - t0, err))
            return 1;
        if (L->a->checkpoint_every > 0 && esm_trainer_steps_done(L->t) % L->a->checkpoint_every == 0 &&
            !save_point(L, &rc, err))
            return rc;
    }
    if (!save_point(L, &rc, err))
        return rc;
    if (L->lead && !run_dir_close(&L->rd, err))
        return train_local_error(L, err);
    if (L->lead)
        summary(L, &s);
    return L->stopped ? 130 : 0;
}

