/*
 * A minimal JSON reader for test fixtures (meta.json): parses a document into
 * a tree and looks values up by key. Header-only; tests only.
 */
#ifndef ONNXC_TESTS_JSON_H
#define ONNXC_TESTS_JSON_H

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } json_kind_t;

typedef struct json_s {
  json_kind_t kind;
  double num;
  char *str;            /* J_STR */
  int n;                /* J_ARR / J_OBJ: children */
  struct json_s **items;
  char **keys;          /* J_OBJ */
} json_t;

typedef struct json_parser_s {
  const char *p, *end;
  int failed;
} json_parser_t;

static void json_ws(json_parser_t *ps) {
  while (ps->p < ps->end && isspace((unsigned char)*ps->p)) ps->p++;
}

static json_t *json_new(json_kind_t k) {
  json_t *j = calloc(1, sizeof(json_t));
  j->kind = k;
  return j;
}

static char *json_parse_string(json_parser_t *ps) {
  if (ps->p >= ps->end || *ps->p != '"') {
    ps->failed = 1;
    return NULL;
  }
  ps->p++;
  size_t cap = 64, n = 0;
  char *s = malloc(cap);
  while (ps->p < ps->end && *ps->p != '"') {
    char c = *ps->p++;
    if (c == '\\' && ps->p < ps->end) {
      c = *ps->p++;
      if (c == 'n') c = '\n';
      else if (c == 't') c = '\t';
      else if (c == 'u') { /* keep \uXXXX as '?' : fixture names are ASCII */
        ps->p += 4;
        c = '?';
      }
    }
    if (n + 2 > cap) s = realloc(s, cap *= 2);
    s[n++] = c;
  }
  s[n] = 0;
  if (ps->p < ps->end) ps->p++;
  else ps->failed = 1;
  return s;
}

static json_t *json_parse_value(json_parser_t *ps);

static void json_push(json_t *j, json_t *item, char *key) {
  j->items = realloc(j->items, sizeof(json_t *) * (size_t)(j->n + 1));
  j->keys = realloc(j->keys, sizeof(char *) * (size_t)(j->n + 1));
  j->items[j->n] = item;
  j->keys[j->n] = key;
  j->n++;
}

static json_t *json_parse_value(json_parser_t *ps) {
  json_ws(ps);
  if (ps->p >= ps->end || ps->failed) {
    ps->failed = 1;
    return json_new(J_NULL);
  }
  char c = *ps->p;
  if (c == '{' || c == '[') {
    json_t *j = json_new(c == '{' ? J_OBJ : J_ARR);
    ps->p++;
    json_ws(ps);
    char close = c == '{' ? '}' : ']';
    if (ps->p < ps->end && *ps->p == close) {
      ps->p++;
      return j;
    }
    while (!ps->failed) {
      char *key = NULL;
      if (c == '{') {
        json_ws(ps);
        key = json_parse_string(ps);
        json_ws(ps);
        if (ps->p < ps->end && *ps->p == ':') ps->p++;
        else ps->failed = 1;
      }
      json_push(j, json_parse_value(ps), key);
      json_ws(ps);
      if (ps->p < ps->end && *ps->p == ',') {
        ps->p++;
        continue;
      }
      if (ps->p < ps->end && *ps->p == close) ps->p++;
      else ps->failed = 1;
      break;
    }
    return j;
  }
  if (c == '"') {
    json_t *j = json_new(J_STR);
    j->str = json_parse_string(ps);
    return j;
  }
  if (!strncmp(ps->p, "null", 4)) {
    ps->p += 4;
    return json_new(J_NULL);
  }
  if (!strncmp(ps->p, "true", 4) || !strncmp(ps->p, "false", 5)) {
    json_t *j = json_new(J_BOOL);
    j->num = *ps->p == 't';
    ps->p += *ps->p == 't' ? 4 : 5;
    return j;
  }
  if (!strncmp(ps->p, "NaN", 3) || !strncmp(ps->p, "Infinity", 8) || !strncmp(ps->p, "-Infinity", 9)) {
    json_t *j = json_new(J_NUM);
    j->num = ps->p[0] == 'N' ? NAN : ps->p[0] == '-' ? -INFINITY : INFINITY;
    ps->p += ps->p[0] == 'N' ? 3 : ps->p[0] == '-' ? 9 : 8;
    return j;
  }
  char *end;
  json_t *j = json_new(J_NUM);
  j->num = strtod(ps->p, &end);
  if (end == ps->p) ps->failed = 1;
  ps->p = end;
  return j;
}

static json_t *json_parse(const char *text, size_t n) {
  json_parser_t ps = {text, text + n, 0};
  json_t *j = json_parse_value(&ps);
  if (ps.failed) return NULL; /* (leaks the partial tree: tests only) */
  return j;
}

static void json_free(json_t *j) {
  if (!j) return;
  for (int i = 0; i < j->n; i++) {
    json_free(j->items[i]);
    free(j->keys[i]);
  }
  free(j->items);
  free(j->keys);
  free(j->str);
  free(j);
}

/* Object member |key|, or NULL. */
static json_t *json_get(const json_t *j, const char *key) {
  if (!j || j->kind != J_OBJ) return NULL;
  for (int i = 0; i < j->n; i++)
    if (j->keys[i] && !strcmp(j->keys[i], key)) return j->items[i];
  return NULL;
}

static double json_num(const json_t *j, double dflt) { return j && j->kind == J_NUM ? j->num : dflt; }

#endif
