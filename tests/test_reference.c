/*
 * The embed models of the PyTorch reference cases (tests/data/reference),
 * end to end: compile embed/model.onnx (a4 also embed_text/model.onnx) to
 * a plan file, open the file, run entry "embed" on test_data_set_0/input_0.pb
 * and compare with output_0.pb elementwise, |out - ref| <= atol + rtol*|ref|,
 * with atol and rtol from the case's meta.json (embeds[k].tolerances of the
 * entry whose "dir" names the folder).
 *
 * One loop-test iteration per embed folder; every message starts with
 * "<case>/<folder>" so a failure names the case.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compile.h"
#include "onnxc/onnxc.h"
#include "tensor_file.h"

#ifndef ONNXC_TEST_DATA
#error "ONNXC_TEST_DATA must name the tests/data folder"
#endif

#define REF_DIR ONNXC_TEST_DATA "/reference"
#define MAX_CASES 64
#define MSG_MAX 1024

typedef struct ref_case_s {
  char name[600];      /* "a1_mlp_triplet/embed" */
  char case_dir[1024]; /* .../reference/a1_mlp_triplet */
  char embed[256];     /* "embed" */
} ref_case_t;

static ref_case_t g_cases[MAX_CASES];
static int g_n_cases;

/* ------------------------------------------------------------------------ */
/* Finding the cases                                                        */
/* ------------------------------------------------------------------------ */

static int is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(((const ref_case_t *)a)->name, ((const ref_case_t *)b)->name);
}

/* Every <case>/embed.../model.onnx of a <case> that has a meta.json. */
static void collect_cases(void) {
  DIR *d = opendir(REF_DIR);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && g_n_cases < MAX_CASES) {
    if (e->d_name[0] == '.') continue;
    char case_dir[1024], meta[1100];
    if ((size_t)snprintf(case_dir, sizeof case_dir, "%s/%s", REF_DIR, e->d_name) >= sizeof case_dir)
      continue;
    snprintf(meta, sizeof meta, "%s/meta.json", case_dir);
    if (!is_file(meta)) continue;
    DIR *cd = opendir(case_dir);
    if (!cd) continue;
    struct dirent *f;
    while ((f = readdir(cd)) != NULL && g_n_cases < MAX_CASES) {
      if (strncmp(f->d_name, "embed", 5) != 0) continue;
      char model[1400];
      snprintf(model, sizeof model, "%s/%s/model.onnx", case_dir, f->d_name);
      if (!is_file(model)) continue;
      ref_case_t *rc = &g_cases[g_n_cases++];
      int r1 = snprintf(rc->name, sizeof rc->name, "%s/%s", e->d_name, f->d_name);
      int r2 = snprintf(rc->case_dir, sizeof rc->case_dir, "%s", case_dir);
      int r3 = snprintf(rc->embed, sizeof rc->embed, "%s", f->d_name);
      (void)r1, (void)r2, (void)r3; /* fit: d_name is at most 255 bytes */
    }
    closedir(cd);
  }
  closedir(d);
  qsort(g_cases, (size_t)g_n_cases, sizeof g_cases[0], cmp_name);
}

/* ------------------------------------------------------------------------ */
/* meta.json: embeds[k].tolerances, by a purpose-built scan                 */
/* ------------------------------------------------------------------------ */

/* The first |needle| in [b, e), or NULL. */
static const char *find_in(const char *b, const char *e, const char *needle) {
  size_t n = strlen(needle);
  for (const char *p = b; p && p + n <= e; p++)
    if (memcmp(p, needle, n) == 0) return p;
  return NULL;
}

/* Past the JSON string starting at |p| (which points at its opening quote). */
static const char *skip_string(const char *p, const char *e) {
  for (p++; p < e; p++) {
    if (*p == '\\' && p + 1 < e)
      p++;
    else if (*p == '"')
      return p + 1;
  }
  return e;
}

static const char *skip_space(const char *p, const char *e) {
  while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
  return p;
}

/* The number after the key |key| (e.g. "\"atol\"") inside [b, e). */
static int number_after(const char *b, const char *e, const char *key, double *out) {
  const char *k = find_in(b, e, key);
  if (!k) return 0;
  const char *p = skip_space(k + strlen(key), e);
  if (p >= e || *p != ':') return 0;
  p = skip_space(p + 1, e);
  char *end;
  errno = 0;
  double v = strtod(p, &end);
  if (end == p || end > e || errno) return 0;
  *out = v;
  return 1;
}

/* Reads atol and rtol of the embeds[] entry whose "dir" is |dir|: finds
 * "embeds", then each "dir" key after it; for the matching one, the
 * "tolerances" object before the next "dir" key, and in that object (braces
 * matched, strings skipped) the "atol" and "rtol" numbers. */
static int meta_tolerances(const char *json, size_t len, const char *dir, double *atol,
                           double *rtol, char *err, size_t n) {
  const char *end = json + len;
  const char *p = find_in(json, end, "\"embeds\"");
  if (!p) {
    snprintf(err, n, "meta.json has no \"embeds\"");
    return 0;
  }
  while ((p = find_in(p, end, "\"dir\"")) != NULL) {
    const char *v = skip_space(p + 5, end);
    p += 5;
    if (v >= end || *v != ':') continue;
    v = skip_space(v + 1, end);
    if (v >= end || *v != '"') continue;
    const char *v_end = skip_string(v, end); /* past the closing quote */
    size_t vlen = (size_t)(v_end - v) - 2;
    if (strlen(dir) != vlen || memcmp(v + 1, dir, vlen) != 0) continue;

    const char *next = find_in(v_end, end, "\"dir\"");
    const char *entry_end = next ? next : end;
    const char *tol = find_in(v_end, entry_end, "\"tolerances\"");
    const char *open = tol ? find_in(tol, entry_end, "{") : NULL;
    if (!open) {
      snprintf(err, n, "meta.json: embeds entry \"%s\" has no \"tolerances\" object", dir);
      return 0;
    }
    const char *q = open;
    int depth = 0;
    while (q < entry_end) {
      if (*q == '"') {
        q = skip_string(q, entry_end);
        continue;
      }
      if (*q == '{') depth++;
      if (*q == '}' && --depth == 0) break;
      q++;
    }
    if (q >= entry_end) {
      snprintf(err, n, "meta.json: embeds entry \"%s\": unterminated \"tolerances\"", dir);
      return 0;
    }
    if (!number_after(open, q, "\"atol\"", atol) || !number_after(open, q, "\"rtol\"", rtol)) {
      snprintf(err, n, "meta.json: embeds entry \"%s\": no numeric atol/rtol in tolerances",
               dir);
      return 0;
    }
    if (!(*atol >= 0) || !(*rtol >= 0)) {
      snprintf(err, n, "meta.json: embeds entry \"%s\": negative atol/rtol", dir);
      return 0;
    }
    return 1;
  }
  snprintf(err, n, "meta.json: no embeds entry with \"dir\": \"%s\"", dir);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* One embed model                                                          */
/* ------------------------------------------------------------------------ */

static int set_error(char *msg, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int set_error(char *msg, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, n, fmt, ap);
  va_end(ap);
  return 0;
}

static const char *status_take(oc_status_t st, char *buf, size_t n) {
  snprintf(buf, n, "%s: %s", oc_status_code_name(oc_status_code(st)), oc_status_message(st));
  oc_status_free(st);
  return buf;
}

/* Compiles, writes, opens and runs the embed model of |rc|, then compares.
 * Returns 1 on success; otherwise 0 and a message (without the case name). */
static int check_embed(const ref_case_t *rc, const char *plan_path, char *msg, size_t n) {
  char buf[MSG_MAX], path[1600], meta_err[256];
  int ok = 0, entry = -1;
  double atol = 0, rtol = 0;
  oc_compiled_t *c = NULL;
  oc_plan_t *plan = NULL;
  oc_context_t *ctx = NULL;
  oc_host_tensor_t in = {0}, ref = {0};
  void *meta = NULL;
  size_t meta_bytes = 0;
  oc_status_t st;

  snprintf(path, sizeof path, "%s/meta.json", rc->case_dir);
  st = oc_file_read_all(path, &meta, &meta_bytes);
  if (st) {
    set_error(msg, n, "%s", status_take(st, buf, sizeof buf));
    goto out;
  }
  if (!meta_tolerances(meta, meta_bytes, rc->embed, &atol, &rtol, meta_err, sizeof meta_err)) {
    set_error(msg, n, "%s", meta_err);
    goto out;
  }

  snprintf(path, sizeof path, "%s/%s/model.onnx", rc->case_dir, rc->embed);
  st = oc_compile_file(path, NULL, &c);
  if (st) {
    set_error(msg, n, "compile: %s", status_take(st, buf, sizeof buf));
    goto out;
  }
  st = oc_plan_write_file(c, plan_path);
  if (st) {
    set_error(msg, n, "plan write: %s", status_take(st, buf, sizeof buf));
    goto out;
  }
  st = oc_plan_open_file(plan_path, NULL, &plan);
  if (st) {
    set_error(msg, n, "plan open: %s", status_take(st, buf, sizeof buf));
    goto out;
  }
  st = oc_plan_find_entry(plan, "embed", &entry);
  if (!st) st = oc_context_create(plan, NULL, &ctx);
  if (st) {
    set_error(msg, n, "entry/context: %s", status_take(st, buf, sizeof buf));
    goto out;
  }

  /* Input. */
  snprintf(path, sizeof path, "%s/%s/test_data_set_0/input_0.pb", rc->case_dir, rc->embed);
  st = oc_tensor_file_read(path, &in);
  if (st) {
    set_error(msg, n, "%s", status_take(st, buf, sizeof buf));
    goto out;
  }
  if (oc_plan_input_count(plan, entry) != 1) {
    set_error(msg, n, "the plan has %d inputs, want 1", oc_plan_input_count(plan, entry));
    goto out;
  }
  int in_idx = in.name ? oc_plan_input_index(plan, entry, in.name) : -1;
  if (in_idx < 0) in_idx = 0;
  oc_tensor_info_t info;
  st = oc_plan_input_info(plan, entry, in_idx, &info);
  if (st) {
    set_error(msg, n, "input info: %s", status_take(st, buf, sizeof buf));
    goto out;
  }
  if ((int)info.dtype != in.dtype || info.bytes != in.bytes) {
    set_error(msg, n, "input '%s': the plan wants %s (%zu bytes), the file has %s (%zu bytes)",
         info.name, oc_dtype_name(info.dtype), info.bytes, oc_dtype_name(in.dtype), in.bytes);
    goto out;
  }
  st = oc_context_set_input(ctx, entry, in_idx, in.data, in.bytes);
  if (!st) st = oc_context_run(ctx, entry);
  if (st) {
    set_error(msg, n, "run: %s", status_take(st, buf, sizeof buf));
    goto out;
  }

  /* Output. */
  snprintf(path, sizeof path, "%s/%s/test_data_set_0/output_0.pb", rc->case_dir, rc->embed);
  st = oc_tensor_file_read(path, &ref);
  if (st) {
    set_error(msg, n, "%s", status_take(st, buf, sizeof buf));
    goto out;
  }
  int out_idx = ref.name ? oc_plan_output_index(plan, entry, ref.name) : -1;
  if (out_idx < 0) out_idx = 0;
  st = oc_plan_output_info(plan, entry, out_idx, &info);
  if (st) {
    set_error(msg, n, "output info: %s", status_take(st, buf, sizeof buf));
    goto out;
  }
  int same = (int)info.dtype == ref.dtype && info.rank == ref.rank;
  for (int i = 0; same && i < ref.rank; i++) same = info.dims[i] == ref.dims[i];
  if (!same) {
    set_error(msg, n, "output '%s': the plan gives %s rank %d, the reference is %s rank %d",
         info.name, oc_dtype_name(info.dtype), info.rank, oc_dtype_name(ref.dtype), ref.rank);
    goto out;
  }
  const void *data = NULL;
  size_t bytes = 0;
  st = oc_context_output(ctx, entry, out_idx, &data, &bytes);
  if (st) {
    set_error(msg, n, "output: %s", status_take(st, buf, sizeof buf));
    goto out;
  }
  if (bytes != ref.bytes || (bytes && !data)) {
    set_error(msg, n, "output: %zu bytes, want %zu", bytes, ref.bytes);
    goto out;
  }
  if (ref.dtype != OC_DTYPE_FLOAT32) {
    ok = memcmp(data, ref.data, bytes) == 0;
    if (!ok) set_error(msg, n, "output (%s) differs", oc_dtype_name(ref.dtype));
    printf("%s: %s output %s\n", rc->name, oc_dtype_name(ref.dtype), ok ? "equal" : "differs");
    goto out;
  }
  const float *o = data, *r = ref.data;
  size_t count = bytes / sizeof(float), bad = 0, first = 0, worst = 0;
  double max_err = 0, worst_ratio = 0;
  for (size_t i = 0; i < count; i++) {
    double err = fabs((double)o[i] - (double)r[i]);
    double bound = atol + rtol * fabs((double)r[i]);
    if (!(err <= bound)) {
      if (bad++ == 0) first = i;
    }
    if (isnan(err) || err > max_err) max_err = isnan(err) ? INFINITY : err;
    double ratio = isnan(err) ? INFINITY : err / bound;
    if (ratio > worst_ratio) {
      worst_ratio = ratio;
      worst = i;
    }
  }
  printf("%s: max |err| %.3g; bound atol %g + rtol %g*|ref| (%.3g at the worst element, "
         "err/bound %.3g); %zu of %zu elements out of bound\n",
         rc->name, max_err, atol, rtol, atol + rtol * fabs((double)r[count ? worst : 0]),
         worst_ratio, bad, count);
  if (bad) {
    set_error(msg, n, "%zu of %zu elements out of bound; first [%zu]: got %.9g, want %.9g "
         "(bound %.3g); max |err| %.3g", bad, count, first, (double)o[first], (double)r[first],
         atol + rtol * fabs((double)r[first]), max_err);
    goto out;
  }
  ok = 1;

out:
  fflush(stdout);
  oc_host_tensor_free(&in);
  oc_host_tensor_free(&ref);
  if (ctx) oc_context_release(ctx);
  if (plan) oc_plan_release(plan);
  if (c) oc_compiled_free(c);
  free(meta);
  return ok;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

START_TEST(test_cases_present) {
  ck_assert_msg(g_n_cases > 0, "no reference case with an embed*/model.onnx under %s", REF_DIR);
}
END_TEST

START_TEST(test_embed) {
  const ref_case_t *rc = &g_cases[_i];
  const char *tmp_root = getenv("TMPDIR");
  char tmpl[512], plan_path[600], msg[MSG_MAX] = "";
  snprintf(tmpl, sizeof tmpl, "%s/oc_test_reference_XXXXXX",
           tmp_root && tmp_root[0] ? tmp_root : "/tmp");
  char *tmp = mkdtemp(tmpl);
  ck_assert_msg(tmp != NULL, "%s: mkdtemp %s: %s", rc->name, tmpl, strerror(errno));
  snprintf(plan_path, sizeof plan_path, "%s/embed.plan", tmp);

  int ok = check_embed(rc, plan_path, msg, sizeof msg);

  unlink(plan_path);
  rmdir(tmp);
  ck_assert_msg(ok, "%s: %s", rc->name, msg);
}
END_TEST

static Suite *reference_suite(void) {
  Suite *s = suite_create("reference");
  TCase *tc = tcase_create("embed");
  /* ctest sets CK_DEFAULT_TIMEOUT; Check's own default (4 s) is too short
   * for a Debug or sanitizer build run by hand. */
  if (!getenv("CK_DEFAULT_TIMEOUT")) tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_cases_present);
  if (g_n_cases > 0) tcase_add_loop_test(tc, test_embed, 0, g_n_cases);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  collect_cases();
  for (int i = 0; i < g_n_cases; i++) printf("case %d: %s\n", i, g_cases[i].name);
  fflush(stdout);
  SRunner *sr = srunner_create(reference_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
