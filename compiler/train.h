/*
 * The train step (compiler/train.c): which initializers train, which are
 * persistent state, and the instructions after the forward pass: backward,
 * gradient store, finiteness check, learning-rate schedule, optimizer
 * updates, step counter.
 *
 * Persistent state names (plan tensors in the state region, readable through
 * oc_context_state):
 *   <initializer>                      a trained parameter or a running statistic
 *   grad:<parameter>                   the last step's gradient
 *   opt:<parameter>:momentum_buffer    SGD / LARS
 *   opt:<parameter>:exp_avg, :exp_avg_sq   Adam / AdamW
 *   opt:step (int64), opt:lr, opt:base_lr  step count, current and base learning rate
 */
#ifndef ONNXC_TRAIN_H
#define ONNXC_TRAIN_H

#include "compile.h"

typedef struct oc_name_set_s {
  char **names;
  int n, cap;
} oc_name_set_t;

int oc_name_set_has(const oc_name_set_t *set, const char *name);
void oc_name_set_free(oc_name_set_t *set);

/* The trainable set: float32 initializers that feed at least one node and
 * are not BatchNormalization running statistics, plus those matching a
 * --trainable pattern, minus those matching a --freeze pattern. |state| gets
 * the trained parameters and every running statistic. */
oc_status_t oc_train_select(const oc_graph_t *g, const oc_train_options_t *t,
                            oc_name_set_t *out_params, oc_name_set_t *out_state);

/* --queue: turns each queue input of |g| into a zero-initialized state value
 * and drops it from the graph inputs. Call after dims are resolved. */
oc_status_t oc_train_mark_queues(oc_graph_t *g, const oc_train_options_t *t);

/* Makes the initializers named in |state| persistent state values. */
void oc_train_mark_state(oc_graph_t *g, const oc_name_set_t *state);

/* Appends the train step to a lowered forward program whose loss is |loss|,
 * training the state values named in |params|: running-statistic updates,
 * backward (oc_autodiff), then oc_train_update. With t->ranks > 1: --sync-bn
 * turns training-mode BatchNorm into SyncBatchNormalization, the gradients
 * are averaged across the ranks before the update (AllReduce), and without
 * --sync-bn the running statistics are averaged after it. */
oc_status_t oc_train_build(oc_graph_t *g, int loss, const oc_train_options_t *t,
                           const oc_name_set_t *params);

/* --ranks N without --global-negatives: axis 0 of the batch inputs (the
 * graph inputs whose axis 0 has the size of the first one's) becomes the
 * rows of one rank, batch / N. Call on the imported graph before lowering. */
oc_status_t oc_train_split_batch(oc_graph_t *g, int64_t ranks);

/* The pieces of oc_train_build, for steps that compute their gradients
 * another way (GradCache, compiler/gradcache.c): */

/* Training-mode BatchNormalization instructions of the forward program get
 * their running-statistic updates (a check, then Assigns) right after them.
 * Call once, on the forward program. */
oc_status_t oc_train_write_back_running_stats(oc_graph_t *g);
/* The state values named in |param_names| that the program reads, in value
 * order: *out_params (malloc'd; free() it) and *out_n. */
oc_status_t oc_train_read_params(const oc_graph_t *g, const oc_name_set_t *param_names,
                                 int **out_params, int *out_n);
/* Everything after the gradients: grad:<param> state, the finiteness check
 * (with |loss|), learning-rate schedule, optimizer updates, --ema, --clamp,
 * --queue, step count. grads[k] holds d loss / d params[k]. */
oc_status_t oc_train_update(oc_graph_t *g, int loss, const oc_train_options_t *t,
                            const oc_name_set_t *param_names, const int *params,
                            const int *grads, int n);

#endif
