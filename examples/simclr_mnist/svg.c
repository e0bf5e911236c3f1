/* The example's two pictures as hand-written SVG: the training loss per step
 * and a scatter plot of 2-D points coloured by digit. Written to PATH.tmp,
 * then renamed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simclr_mnist.h"

/* Matplotlib's tab10 palette, one colour per digit. */
static const char *const kColours[MNIST_CLASSES] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

static FILE *open_tmp(const char *path, char *tmp, size_t tmp_size) {
  snprintf(tmp, tmp_size, "%s.tmp", path);
  return fopen(tmp, "w");
}

static int close_rename(FILE *f, const char *tmp, const char *path) {
  int bad = ferror(f);
  bad |= fclose(f) != 0;
  if (bad || rename(tmp, path) != 0) {
    remove(tmp);
    return -1;
  }
  return 0;
}

/* Tick spacing of 1, 2 or 5 times a power of ten giving about |n| ticks. */
static double nice_step(double span, int n) {
  if (!(span > 0)) return 1;
  double raw = span / n, p = pow(10, floor(log10(raw))), f = raw / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void fmt_tick(char *buf, size_t size, double v, double step) {
  int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
  if (fabs(v) < step * 1e-6) v = 0;
  snprintf(buf, size, "%.*f", decimals, v);
}

static void escape(FILE *f, const char *s) {
  for (; *s; s++) {
    if (*s == '<') fputs("&lt;", f);
    else if (*s == '>') fputs("&gt;", f);
    else if (*s == '&') fputs("&amp;", f);
    else fputc(*s, f);
  }
}

/* Frame, grid, ticks and labels of a plot whose data area is
 * [x0, x0+w] x [y0, y0+h] in pixels for data [xlo, xhi] x [ylo, yhi]. */
static void axes(FILE *f, double x0, double y0, double w, double h, double xlo, double xhi,
                 double ylo, double yhi, double xstep, double ystep, const char *x_label,
                 const char *y_label, int grid) {
  char t[64];
  fprintf(f, "<g font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\" fill=\"#333\">\n");
  for (double v = ceil(xlo / xstep) * xstep; v <= xhi + 1e-9 * xstep; v += xstep) {
    double x = x0 + (v - xlo) / (xhi - xlo) * w;
    if (grid)
      fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", x,
              y0, x, y0 + h);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", x,
            y0 + h, x, y0 + h + 5);
    fmt_tick(t, sizeof t, v, xstep);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", x, y0 + h + 19, t);
  }
  for (double v = ceil(ylo / ystep) * ystep; v <= yhi + 1e-9 * ystep; v += ystep) {
    double y = y0 + h - (v - ylo) / (yhi - ylo) * h;
    if (grid)
      fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", x0,
              y, x0 + w, y);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", x0 - 5,
            y, x0, y);
    fmt_tick(t, sizeof t, v, ystep);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", x0 - 8, y + 4, t);
  }
  fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
             "stroke=\"#333\"/>\n", x0, y0, w, h);
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">", x0 + w / 2,
          y0 + h + 40);
  escape(f, x_label);
  fprintf(f, "</text>\n<text transform=\"translate(%.1f %.1f) rotate(-90)\" "
             "text-anchor=\"middle\" font-size=\"13\">", x0 - 52, y0 + h / 2);
  escape(f, y_label);
  fprintf(f, "</text>\n</g>\n");
}

static void title(FILE *f, double x, double y, const char *text) {
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-family=\"DejaVu Sans, "
             "Arial, sans-serif\" font-size=\"15\" font-weight=\"bold\" fill=\"#222\">", x, y);
  escape(f, text);
  fprintf(f, "</text>\n");
}

int svg_loss(const char *path, const float *loss, int steps, int steps_per_epoch,
             const char *title_text) {
  char tmp[4096];
  FILE *f = open_tmp(path, tmp, sizeof tmp);
  if (!f) return -1;
  const double W = 760, H = 440, x0 = 80, y0 = 45, w = W - x0 - 30, h = H - y0 - 65;
  double lo = INFINITY, hi = -INFINITY;
  for (int i = 0; i < steps; i++)
    if (isfinite(loss[i])) {
      lo = fmin(lo, loss[i]);
      hi = fmax(hi, loss[i]);
    }
  if (!isfinite(lo)) lo = 0, hi = 1;
  if (hi - lo < 1e-6) hi = lo + 1;
  double ystep = nice_step(hi - lo, 6);
  lo = floor(lo / ystep) * ystep;
  hi = ceil(hi / ystep) * ystep;
  double xhi = steps > 1 ? steps : 2;
  double xstep = nice_step(xhi - 1, 8);
  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
             "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n", W, H, W, H);
  fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
  title(f, x0 + w / 2, 25, title_text);
  axes(f, x0, y0, w, h, 1, xhi, lo, hi, xstep, ystep, "train step", "NT-Xent loss", 1);
#define PX(i) (x0 + ((double)(i) + 1 - 1) / (xhi - 1) * w)
#define PY(v) (y0 + h - ((v) - lo) / (hi - lo) * h)
  /* Epoch boundaries, labelled when they are few enough to read. */
  int epochs = steps_per_epoch > 0 ? steps / steps_per_epoch : 0;
  int label_every = epochs <= 12 ? 1 : (epochs + 11) / 12;
  for (int e = 1; e <= epochs && steps_per_epoch > 0; e++) {
    double x = PX(e * steps_per_epoch - 1);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#bbb\" "
               "stroke-dasharray=\"3 3\"/>\n", x, y0, x, y0 + h);
    if (e % label_every == 0)
      fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-family=\"DejaVu Sans, "
                 "Arial, sans-serif\" font-size=\"10\" fill=\"#888\">ep %d</text>\n",
              x - 2, y0 + 12, e);
  }
  /* Every step (light), and the mean over the last steps (dark). */
  fprintf(f, "<polyline fill=\"none\" stroke=\"#9ecae1\" stroke-width=\"1\" points=\"");
  for (int i = 0; i < steps; i++)
    if (isfinite(loss[i])) fprintf(f, "%.1f,%.1f ", PX(i), PY(loss[i]));
  fprintf(f, "\"/>\n");
  int win = steps_per_epoch > 1 ? steps_per_epoch : 10;
  if (win > steps) win = steps;
  fprintf(f, "<polyline fill=\"none\" stroke=\"#08519c\" stroke-width=\"2\" points=\"");
  double sum = 0;
  int cnt = 0;
  for (int i = 0; i < steps; i++) {
    if (isfinite(loss[i])) sum += loss[i], cnt++;
    if (i >= win && isfinite(loss[i - win])) sum -= loss[i - win], cnt--;
    if (cnt > 0) fprintf(f, "%.1f,%.1f ", PX(i), PY(sum / cnt));
  }
  fprintf(f, "\"/>\n");
  /* Legend. */
  double lx = x0 + w - 190, ly = y0 + 14;
  fprintf(f, "<g font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\" fill=\"#333\">\n"
             "<rect x=\"%.1f\" y=\"%.1f\" width=\"182\" height=\"44\" fill=\"white\" "
             "stroke=\"#ccc\"/>\n", lx, ly);
  fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#9ecae1\" "
             "stroke-width=\"2\"/><text x=\"%.1f\" y=\"%.1f\">loss of each step</text>\n",
          lx + 8, ly + 14, lx + 30, ly + 14, lx + 36, ly + 18);
  fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#08519c\" "
             "stroke-width=\"2\"/><text x=\"%.1f\" y=\"%.1f\">mean of last %d steps</text>\n</g>\n",
          lx + 8, ly + 32, lx + 30, ly + 32, lx + 36, ly + 36, win);
#undef PX
#undef PY
  fprintf(f, "</svg>\n");
  return close_rename(f, tmp, path);
}

int svg_scatter(const char *path, const float *xy, const int *labels, int n,
                const char *title_text, const char *x_label, const char *y_label) {
  char tmp[4096];
  FILE *f = open_tmp(path, tmp, sizeof tmp);
  if (!f) return -1;
  const double W = 760, H = 640, x0 = 80, y0 = 45, w = 560, h = H - y0 - 65;
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (int i = 0; i < n; i++) {
    xlo = fmin(xlo, xy[2 * i]);
    xhi = fmax(xhi, xy[2 * i]);
    ylo = fmin(ylo, xy[2 * i + 1]);
    yhi = fmax(yhi, xy[2 * i + 1]);
  }
  if (!(xhi > xlo)) xlo -= 1, xhi += 1;
  if (!(yhi > ylo)) ylo -= 1, yhi += 1;
  double xs = nice_step(xhi - xlo, 6), ys = nice_step(yhi - ylo, 6);
  xlo = floor(xlo / xs) * xs, xhi = ceil(xhi / xs) * xs;
  ylo = floor(ylo / ys) * ys, yhi = ceil(yhi / ys) * ys;
  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
             "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n", W, H, W, H);
  fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
  title(f, x0 + w / 2, 25, title_text);
  axes(f, x0, y0, w, h, xlo, xhi, ylo, yhi, xs, ys, x_label, y_label, 0);
  fprintf(f, "<g fill-opacity=\"0.75\" stroke=\"none\">\n");
  for (int i = 0; i < n; i++) {
    double x = x0 + (xy[2 * i] - xlo) / (xhi - xlo) * w;
    double y = y0 + h - (xy[2 * i + 1] - ylo) / (yhi - ylo) * h;
    int l = labels[i] >= 0 && labels[i] < MNIST_CLASSES ? labels[i] : 0;
    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.4\" fill=\"%s\"/>\n", x, y, kColours[l]);
  }
  fprintf(f, "</g>\n");
  /* Legend: one swatch per digit, with its count. */
  int count[MNIST_CLASSES] = {0};
  for (int i = 0; i < n; i++)
    if (labels[i] >= 0 && labels[i] < MNIST_CLASSES) count[labels[i]]++;
  double lx = x0 + w + 20, ly = y0;
  fprintf(f, "<g font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"13\" fill=\"#333\">\n");
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\">digit</text>\n", lx, ly + 12);
  for (int c = 0; c < MNIST_CLASSES; c++) {
    double y = ly + 34 + c * 24;
    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"%s\"/>", lx + 6, y - 4, kColours[c]);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%d <tspan fill=\"#999\" font-size=\"11\">(%d)</tspan>"
               "</text>\n", lx + 18, y, c, count[c]);
  }
  fprintf(f, "</g>\n</svg>\n");
  return close_rename(f, tmp, path);
}
