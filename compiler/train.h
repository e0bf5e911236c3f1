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
 * training the state values named in |params|. */
oc_status_t oc_train_build(oc_graph_t *g, int loss, const oc_train_options_t *t,
                           const oc_name_set_t *params);

#endif
