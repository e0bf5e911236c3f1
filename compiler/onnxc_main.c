/* onnxc: the compiler's command line. */
#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "cli_size.h"
#include "compile.h"
#include "inspect.h"
#include "memreport.h"
#include "onnx_wire.h"
#include "tensor_file.h"
#include "lowering.h"

#ifndef ONNXC_VERSION_STRING
#define ONNXC_VERSION_STRING "0.2.0"
#endif

static void usage(FILE *f) {
  fprintf(f,
          "usage: onnxc MODEL.onnx -o PLAN.bin [options]\n"
          "       onnxc --inspect FILE\n"
          "\n"
          "Compiles an ONNX model into a static execution plan for the onnxc runtime.\n"
          "The plan's entry point 'embed' computes the graph outputs (or the values named\n"
          "with --output) from the graph inputs; every shape is fixed at compile time.\n"
          "\n"
          "options:\n"
          "  -o, --output-plan PLAN   where to write the plan (written atomically)\n"
          "  --dim NAME=V             value of the symbolic dimension NAME (e.g. a dynamic\n"
          "                           batch axis: --dim batch=32); repeatable\n"
          "  --output NAME            compile only what the value NAME needs and return it\n"
          "                           (repeatable; default: the graph's outputs)\n"
          "  --inspect FILE           print inputs, outputs, op histogram, parameter count and\n"
          "                           sizes of a model (.onnx) or a plan\n"
          "  --memory-report FILE     write the memory plan of the largest entry point\n"
          "                           (train_step if any) as JSON: regions, arena_bytes,\n"
          "                           lower_bound_bytes, peak_step, tensors\n"
          "  --memory-svg FILE        draw that arena: x = step, y = offset\n"
          "  --list-ops               print the supported ONNX ops as a Markdown table\n"
          "  --threads N              threads for the kernels that fold constants at compile\n"
          "                           time (OpenBLAS's; default: every core)\n"
          "\n"
          "resource limits (per entry point; SECURITY.md; sizes take K, M, G, T suffixes,\n"
          "powers of 1024):\n"
          "  --max-memory BYTES       the model's initializers and the constants folding\n"
          "                           makes, in total (default 16G)\n"
          "  --max-fold BYTES         constants that folding makes, in total (default 1G)\n"
          "  --fold-limit BYTES       one folded constant with its kernel's scratch memory\n"
          "                           (default 64M)\n"
          "  --max-fold-cost N        operations (multiply-adds, element visits) that\n"
          "                           folding runs, in total (default 8G = 2^33)\n"
          "                           Folding beyond these three limits is not done: the op\n"
          "                           runs at run time. Ops that only make constants (Range,\n"
          "                           EyeLike, NonZero, Constant) fail instead.\n"
          "  --max-nodes N            nodes in the graph (default 1M = 2^20)\n"
          "  --max-depth N            message nesting of the model file, e.g. If/Loop\n"
          "                           subgraphs inside subgraphs (default 100, at most 1000)\n"
          "\n"
          "training (the plan gets a 'train_step' entry point; 'embed' then returns the\n"
          "--embed-output values computed in inference mode from the same parameters):\n"
          "  --train                  differentiate the loss and add the optimizer\n"
          "  --loss NAME              the scalar loss (default: the first graph output)\n"
          "  --embed-output NAME      what 'embed' returns (repeatable; default: the graph\n"
          "                           outputs other than the loss)\n"
          "  --freeze REGEX           do not train initializers whose whole name matches\n"
          "                           (POSIX extended regex; repeatable)\n"
          "  --trainable REGEX        also train matching float initializers (repeatable);\n"
          "                           default: float initializers that feed a node and are\n"
          "                           not BatchNorm running statistics; --freeze wins\n"
          "  --optimizer sgd|adam|adamw|lars   (default sgd; PyTorch semantics)\n"
          "  --lr X                   learning rate (default 0.01)\n"
          "  --momentum X             SGD/LARS momentum (default 0)\n"
          "  --dampening X            SGD dampening (default 0)\n"
          "  --nesterov               SGD Nesterov momentum\n"
          "  --weight-decay X         L2 penalty (decoupled for adamw; default 0)\n"
          "  --betas B1,B2            Adam/AdamW betas (default 0.9,0.999)\n"
          "  --eps X                  Adam/AdamW/LARS epsilon (default 1e-8)\n"
          "  --trust-coefficient X    LARS trust coefficient (default 0.001); biases and\n"
          "                           normalization parameters (rank <= 1) are excluded\n"
          "                           from LARS adaptation and weight decay\n"
          "  --schedule constant|cosine  learning-rate schedule (default constant); cosine:\n"
          "                           linear warmup over --warmup-steps, then cosine decay\n"
          "                           to 0 at --total-steps\n"
          "  --warmup-steps N, --total-steps N\n"
          "  --batch N                scale the learning rate by N/256 (SimCLR's rule)\n"
          "  --ema DST=SRC:M          MoCo's momentum encoder: initializers named DST... are\n"
          "                           frozen and after each step become m*dst + (1-m)*src,\n"
          "                           src the initializer with SRC in place of DST (its\n"
          "                           parameters; BatchNorm running statistics keep their\n"
          "                           own updates, as in MoCo); repeatable\n"
          "  --queue INPUT=VALUE:AXIS graph input INPUT becomes persistent state, a ring\n"
          "                           buffer along AXIS: after each step the value VALUE\n"
          "                           (e.g. the batch's key embeddings) overwrites its oldest\n"
          "                           entries (MoCo's queue); its first contents come from\n"
          "                           the first batch, or onnxrun --state-init INPUT=FILE\n"
          "  --clamp NAME=MIN,MAX     clamp initializer NAME after each step (CLIP's\n"
          "                           logit scale); repeatable\n"
          "  --memory-budget BYTES    the train step's arena (activations, temporaries,\n"
          "                           kernel workspaces; not the weights, gradients or\n"
          "                           optimizer state) must fit in BYTES (K/M/G suffixes,\n"
          "                           powers of 1024). If it does not, forward activations\n"
          "                           are dropped and recomputed in the backward (the same\n"
          "                           kernels on the same values: bit-identical losses and\n"
          "                           gradients); one line on stderr gives the extra FLOPs,\n"
          "                           also in --memory-report. A budget too small fails,\n"
          "                           naming the smallest budget that works\n"
          "  --micro-batch N          GradCache: large batches with the activation memory of\n"
          "                           N rows. The encoders run on chunks of N rows of the batch\n"
          "                           inputs, twice per step (first keeping only their outputs,\n"
          "                           then again to backpropagate each chunk's rows of the loss\n"
          "                           gradient); the loss sees the whole batch. The batch must\n"
          "                           be a multiple of N. Without BatchNorm the step equals\n"
          "                           the full-batch step; training-mode BatchNorm uses each\n"
          "                           chunk's statistics (a warning says so); training-mode\n"
          "                           Dropout in the encoders is an error\n"
          "  --cut VALUE[,VALUE...]   with --micro-batch or --global-negatives: the values\n"
          "                           where the per-example encoders end and the loss\n"
          "                           begins (default: found automatically); repeatable\n"
          "\n"
          "data-parallel training (onnxrun under mpirun -np N; docs/distributed.md):\n"
          "  --ranks N                a train step for one of N ranks: the model's batch\n"
          "                           (axis 0 of its batch inputs, as exported or set by\n"
          "                           --dim) is the global batch; each rank runs batch/N\n"
          "                           rows of it (onnxrun gives rank r rows [r*B/N,\n"
          "                           (r+1)*B/N) of each batch input) and the gradients are\n"
          "                           averaged across the ranks before the optimizer.\n"
          "                           Without --sync-bn, BatchNorm uses each rank's\n"
          "                           statistics and the running statistics are averaged\n"
          "                           after each step. The plan also runs in one process\n"
          "                           (on batch/N rows), except with --global-negatives\n"
          "  --global-negatives       with --ranks: the loss head (after the cut, as for\n"
          "                           --micro-batch) sees the embeddings of every rank\n"
          "                           (all-gathered), so the step equals the one-process\n"
          "                           step on the whole batch; the plan then runs only on\n"
          "                           exactly N ranks\n"
          "  --sync-bn                with --ranks: training-mode BatchNorm normalizes with\n"
          "                           the statistics of the global batch (SimCLR's global BN)\n"
          "  --version                print the version and the plan format version\n"
          "  -h, --help               this text\n"
          "\n"
          "Exit status: 0 on success, 1 on a compile error (one line on stderr), 2 on bad usage.\n");
}

/* The op table of docs/ops.md, generated from compiler/ops/onnx_ops.h. */
static int by_op_name(const void *a, const void *b) {
  const char *d, *na, *nb, *t;
  int s;
  oc_lower_op_info(*(const int *)a, &d, &na, &s, &t);
  oc_lower_op_info(*(const int *)b, &d, &nb, &s, &t);
  return strcmp(na, nb);
}

static void list_ops(void) {
  int n = oc_lower_op_count();
  int *order = malloc(sizeof(int) * (size_t)n);
  if (!order) return;
  for (int i = 0; i < n; i++) order[i] = i;
  qsort(order, (size_t)n, sizeof(int), by_op_name);
  printf("| op | domain | opsets | dtypes | gradient |\n|---|---|---|---|---|\n");
  for (int k = 0; k < n; k++) {
    const char *domain, *name, *dtypes;
    int since;
    oc_lower_op_info(order[k], &domain, &name, &since, &dtypes);
    printf("| %s | %s | %d-%d | %s | %s |\n", name, domain[0] ? domain : "ai.onnx", since,
           OC_MAX_OPSET, dtypes, oc_grad_covers_onnx_op(name) ? "yes" : "no");
  }
  free(order);
}

static int fail(oc_status_t s) {
  fprintf(stderr, "onnxc: error: %s\n", oc_status_message(s));
  oc_status_free(s);
  return 1;
}

static int bad_usage(const char *msg, const char *arg) {
  fprintf(stderr, "onnxc: %s%s%s (see onnxc --help)\n", msg, arg ? ": " : "", arg ? arg : "");
  return 2;
}

/* Parses a finite float; 0 on success. */
static int parse_float(const char *s, float *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || v != v || v > 3.4e38 || v < -3.4e38) return -1;
  *out = (float)v;
  return 0;
}

static int parse_count(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < 0) return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  oc_compile_options_t opts;
  oc_compile_options_init(&opts);
  const char *model = NULL, *plan_path = NULL, *inspect = NULL;
  const char *report_json = NULL, *report_svg = NULL;
  int train_flags = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has_next = i + 1 < argc;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--list-ops")) {
      list_ops();
      return 0;
    } else if (!strcmp(a, "--version")) {
      uint32_t lo, hi;
      oc_plan_format_versions(&lo, &hi);
      printf("onnxc %s (plan format %u)\n", ONNXC_VERSION_STRING, hi);
      return 0;
    } else if (!strcmp(a, "-o") || !strcmp(a, "--output-plan")) {
      if (!has_next) return bad_usage("missing value for", a);
      plan_path = argv[++i];
    } else if (!strcmp(a, "--memory-report") || !strcmp(a, "--memory-svg")) {
      if (!has_next) return bad_usage("missing value for", a);
      if (!strcmp(a, "--memory-report"))
        report_json = argv[++i];
      else
        report_svg = argv[++i];
    } else if (!strcmp(a, "--inspect")) {
      if (!has_next) return bad_usage("missing value for", a);
      inspect = argv[++i];
    } else if (!strcmp(a, "--dim")) {
      if (!has_next) return bad_usage("missing value for", a);
      const char *spec = argv[++i];
      const char *eq = strchr(spec, '=');
      if (!eq || eq == spec) return bad_usage("--dim takes NAME=V", spec);
      char *end;
      errno = 0;
      long long v = strtoll(eq + 1, &end, 10);
      if (errno || *end || end == eq + 1 || v < 0) return bad_usage("--dim value is not a size", spec);
      if (opts.n_dims >= OC_COMPILE_MAX_DIMS) return bad_usage("too many --dim", NULL);
      /* argv outlives opts; cut the name at '=' in place. */
      argv[i][eq - spec] = 0;
      opts.dim_names[opts.n_dims] = argv[i];
      opts.dim_values[opts.n_dims++] = v;
    } else if (!strcmp(a, "--train")) {
      opts.train.enabled = 1;
      train_flags++;
    } else if (!strcmp(a, "--nesterov")) {
      opts.train.nesterov = 1;
      train_flags++;
    } else if (!strcmp(a, "--ema") || !strcmp(a, "--queue") || !strcmp(a, "--clamp")) {
      if (!has_next) return bad_usage("missing value for", a);
      char *v = argv[++i];
      oc_train_options_t *t = &opts.train;
      train_flags++;
      char *eq = strchr(v, '=');
      if (!eq || eq == v) return bad_usage("bad value for", a);
      *eq = 0;
      char *rest = eq + 1;
      if (!strcmp(a, "--clamp")) {
        char *comma = strchr(rest, ',');
        if (!comma || t->n_clamp >= OC_COMPILE_MAX_PATTERNS) return bad_usage("--clamp takes NAME=MIN,MAX", NULL);
        *comma = 0;
        float lo, hi;
        if (parse_float(rest, &lo) || parse_float(comma + 1, &hi) || lo > hi)
          return bad_usage("--clamp takes NAME=MIN,MAX with MIN <= MAX", NULL);
        t->clamp_name[t->n_clamp] = v;
        t->clamp_min[t->n_clamp] = lo;
        t->clamp_max[t->n_clamp++] = hi;
      } else {
        char *colon = strrchr(rest, ':');
        if (!colon || colon == rest) return bad_usage("bad value for", a);
        *colon = 0;
        if (!strcmp(a, "--ema")) {
          float m;
          if (parse_float(colon + 1, &m) || m < 0 || m > 1 || t->n_ema >= OC_COMPILE_MAX_PATTERNS)
            return bad_usage("--ema takes DST=SRC:M with M in [0, 1]", NULL);
          t->ema_dst[t->n_ema] = v;
          t->ema_src[t->n_ema] = rest;
          t->ema_m[t->n_ema++] = m;
        } else {
          int64_t axis;
          char *end;
          axis = strtoll(colon + 1, &end, 10);
          if (*end || end == colon + 1 || axis < -8 || axis > 7 || t->n_queue >= OC_COMPILE_MAX_PATTERNS)
            return bad_usage("--queue takes INPUT=VALUE:AXIS", NULL);
          t->queue_input[t->n_queue] = v;
          t->queue_value[t->n_queue] = rest;
          t->queue_axis[t->n_queue++] = (int)axis;
        }
      }
    } else if (!strcmp(a, "--ranks")) {
      if (!has_next) return bad_usage("missing value for", a);
      train_flags++;
      if (parse_count(argv[++i], &opts.train.ranks) || opts.train.ranks < 1 ||
          opts.train.ranks > 65536)
        return bad_usage("--ranks takes a count in [1, 65536]", argv[i]);
    } else if (!strcmp(a, "--global-negatives")) {
      opts.train.global_negatives = 1;
      train_flags++;
    } else if (!strcmp(a, "--sync-bn")) {
      opts.train.sync_bn = 1;
      train_flags++;
    } else if (!strcmp(a, "--micro-batch")) {
      if (!has_next) return bad_usage("missing value for", a);
      train_flags++;
      if (parse_count(argv[++i], &opts.train.micro_batch) || opts.train.micro_batch == 0)
        return bad_usage("--micro-batch takes a count >= 1", argv[i]);
    } else if (!strcmp(a, "--cut")) {
      if (!has_next) return bad_usage("missing value for", a);
      train_flags++;
      /* argv outlives opts: split the list in place. */
      for (char *name = argv[++i], *next; name; name = next) {
        next = strchr(name, ',');
        if (next) *next++ = 0;
        if (!*name) return bad_usage("--cut takes VALUE[,VALUE...]", NULL);
        if (opts.train.n_cut >= OC_COMPILE_MAX_OUTPUTS) return bad_usage("too many", a);
        opts.train.cut[opts.train.n_cut++] = name;
      }
    } else if (!strcmp(a, "--memory-budget")) {
      if (!has_next) return bad_usage("missing value for", a);
      train_flags++;
      if (oc_parse_size(argv[++i], &opts.memory_budget_bytes))
        return bad_usage("--memory-budget takes a byte count >= 1 (K/M/G suffixes)", argv[i]);
    } else if (!strcmp(a, "--batch")) {
      if (!has_next) return bad_usage("missing value for", a);
      train_flags++;
      if (parse_count(argv[++i], &opts.train.batch) || opts.train.batch == 0)
        return bad_usage("--batch takes a count >= 1", argv[i]);
    } else if (!strcmp(a, "--loss") || !strcmp(a, "--embed-output") || !strcmp(a, "--freeze") ||
               !strcmp(a, "--trainable") || !strcmp(a, "--optimizer") || !strcmp(a, "--lr") ||
               !strcmp(a, "--momentum") || !strcmp(a, "--dampening") ||
               !strcmp(a, "--weight-decay") || !strcmp(a, "--betas") || !strcmp(a, "--eps") ||
               !strcmp(a, "--trust-coefficient") || !strcmp(a, "--schedule") ||
               !strcmp(a, "--warmup-steps") || !strcmp(a, "--total-steps")) {
      if (!has_next) return bad_usage("missing value for", a);
      const char *v = argv[++i];
      oc_train_options_t *t = &opts.train;
      train_flags++;
      int bad = 0;
      if (!strcmp(a, "--loss")) {
        t->loss = v;
      } else if (!strcmp(a, "--embed-output")) {
        if (t->n_embed_outputs >= OC_COMPILE_MAX_OUTPUTS) return bad_usage("too many", a);
        t->embed_outputs[t->n_embed_outputs++] = v;
      } else if (!strcmp(a, "--freeze")) {
        if (t->n_freeze >= OC_COMPILE_MAX_PATTERNS) return bad_usage("too many", a);
        t->freeze[t->n_freeze++] = v;
      } else if (!strcmp(a, "--trainable")) {
        if (t->n_trainable >= OC_COMPILE_MAX_PATTERNS) return bad_usage("too many", a);
        t->trainable[t->n_trainable++] = v;
      } else if (!strcmp(a, "--optimizer")) {
        if (!strcmp(v, "sgd")) t->optimizer = OC_OPTIMIZER_SGD;
        else if (!strcmp(v, "adam")) t->optimizer = OC_OPTIMIZER_ADAM;
        else if (!strcmp(v, "adamw")) t->optimizer = OC_OPTIMIZER_ADAMW;
        else if (!strcmp(v, "lars")) t->optimizer = OC_OPTIMIZER_LARS;
        else bad = 1;
      } else if (!strcmp(a, "--schedule")) {
        if (!strcmp(v, "constant")) t->schedule = OC_SCHEDULE_CONSTANT;
        else if (!strcmp(v, "cosine")) t->schedule = OC_SCHEDULE_COSINE;
        else bad = 1;
      } else if (!strcmp(a, "--betas")) {
        char b1[64];
        const char *comma = strchr(v, ',');
        if (!comma || (size_t)(comma - v) >= sizeof b1) {
          bad = 1;
        } else {
          memcpy(b1, v, (size_t)(comma - v));
          b1[comma - v] = 0;
          bad = parse_float(b1, &t->beta1) || parse_float(comma + 1, &t->beta2) ||
                !(t->beta1 >= 0 && t->beta1 < 1 && t->beta2 >= 0 && t->beta2 < 1);
        }
      } else if (!strcmp(a, "--warmup-steps")) {
        bad = parse_count(v, &t->warmup_steps);
      } else if (!strcmp(a, "--total-steps")) {
        bad = parse_count(v, &t->total_steps);
      } else {
        float *dst = !strcmp(a, "--lr")              ? &t->lr
                     : !strcmp(a, "--momentum")      ? &t->momentum
                     : !strcmp(a, "--dampening")     ? &t->dampening
                     : !strcmp(a, "--weight-decay")  ? &t->weight_decay
                     : !strcmp(a, "--eps")           ? &t->eps
                                                     : &t->trust_coefficient;
        bad = parse_float(v, dst) || *dst < 0;
      }
      if (bad) return bad_usage("bad value for", a);
    } else if (!strcmp(a, "--threads")) {
      int64_t n;
      if (!has_next) return bad_usage("missing value for", a);
      if (parse_count(argv[++i], &n) || n < 1 || n > 1024)
        return bad_usage("--threads takes a count >= 1", argv[i]);
      openblas_set_num_threads((int)n);
    } else if (!strcmp(a, "--max-memory") || !strcmp(a, "--max-fold") ||
               !strcmp(a, "--fold-limit") || !strcmp(a, "--max-fold-cost") ||
               !strcmp(a, "--max-nodes") || !strcmp(a, "--max-depth")) {
      uint64_t v;
      if (!has_next) return bad_usage("missing value for", a);
      if (oc_parse_size(argv[++i], &v)) return bad_usage("bad value (a number >= 1, K/M/G/T suffixes) for", a);
      if (!strcmp(a, "--max-memory")) opts.max_memory_bytes = v;
      else if (!strcmp(a, "--max-fold")) opts.max_fold_bytes = v;
      else if (!strcmp(a, "--fold-limit")) opts.fold_limit_bytes = v;
      else if (!strcmp(a, "--max-fold-cost")) opts.max_fold_cost = v;
      else if (!strcmp(a, "--max-nodes")) opts.max_nodes = v;
      else if (v > OC_ONNX_MAX_DEPTH_CAP) return bad_usage("--max-depth is at most 1000", argv[i]);
      else opts.max_depth = (int)v;
    } else if (!strcmp(a, "--output")) {
      if (!has_next) return bad_usage("missing value for", a);
      if (opts.n_outputs >= OC_COMPILE_MAX_OUTPUTS) return bad_usage("too many --output", NULL);
      opts.outputs[opts.n_outputs++] = argv[++i];
    } else if (a[0] == '-' && a[1]) {
      return bad_usage("unknown option", a);
    } else {
      if (model) return bad_usage("more than one model given", a);
      model = a;
    }
  }
  if (inspect) {
    if (model || plan_path) return bad_usage("--inspect takes no other arguments", NULL);
    char *text = NULL;
    oc_status_t s = oc_inspect_file(inspect, &text);
    if (s) return fail(s);
    fputs(text, stdout);
    free(text);
    return 0;
  }
  if (!model) return bad_usage("no model given", NULL);
  if (train_flags && !opts.train.enabled) return bad_usage("training options need --train", NULL);
  if (opts.train.enabled && opts.n_outputs)
    return bad_usage("--output cuts a graph for embedding; with --train use --embed-output", NULL);
  if (opts.train.schedule == OC_SCHEDULE_COSINE && opts.train.total_steps == 0)
    return bad_usage("--schedule cosine needs --total-steps", NULL);
  if (opts.train.n_cut && !opts.train.micro_batch && !opts.train.global_negatives)
    return bad_usage("--cut needs --micro-batch or --global-negatives", NULL);
  if ((opts.train.global_negatives || opts.train.sync_bn) && opts.train.ranks < 1)
    return bad_usage("--global-negatives and --sync-bn need --ranks N", NULL);
  if (opts.train.ranks > 1 && opts.train.micro_batch)
    return bad_usage("--micro-batch with --ranks is not supported yet", NULL);
  if (opts.train.ranks > 1 && opts.train.n_queue)
    return bad_usage("--queue with --ranks is not supported yet (each rank would queue its own "
                     "keys)", NULL);
  if (!plan_path) return bad_usage("no output plan given (-o PLAN.bin)", NULL);
  oc_compiled_t *c = NULL;
  oc_status_t s = oc_compile_file(model, &opts, &c);
  if (s) return fail(s);
  for (const char *w = c->warnings; w && *w;) {
    const char *end = strchr(w, '\n');
    int n = end ? (int)(end - w) : (int)strlen(w);
    fprintf(stderr, "onnxc: warning: %.*s\n", n, w);
    w += n + (end != NULL);
  }
  for (int k = 0; k < c->n_entries && opts.memory_budget_bytes; k++) {
    const oc_entry_t *e = &c->entries[k];
    if (!e->budget_bytes) continue;
    fprintf(stderr, "onnxc: %s: arena %llu bytes within the budget of %llu (%llu without it); "
            "recomputes %d instructions: %llu extra FLOPs per step (+%.1f%% of %llu)\n",
            e->name, (unsigned long long)e->arena_bytes, (unsigned long long)e->budget_bytes,
            (unsigned long long)e->unbudgeted_arena_bytes, e->n_recomputed,
            (unsigned long long)e->recompute_flops,
            e->step_flops ? 100.0 * (double)e->recompute_flops / (double)e->step_flops : 0.0,
            (unsigned long long)e->step_flops);
  }
  const char *reports[2] = {report_json, report_svg};
  for (int k = 0; k < 2 && !s; k++) {
    if (!reports[k]) continue;
    char *text = NULL;
    s = k == 0 ? oc_memory_report_json(c, &text) : oc_memory_report_svg(c, &text);
    if (!s) s = oc_file_write_atomic(reports[k], text, strlen(text));
    free(text);
  }
  if (!s) s = oc_plan_write_file(c, plan_path);
  oc_compiled_free(c);
  if (s) return fail(s);
  return 0;
}
