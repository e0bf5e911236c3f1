/**
 * @file augment.h
 * @brief onnxc augmentations: SimCLR's view pipeline for NCHW images, in C.
 *
 * A contrastive trainer calls oc_augment_batch() (float images in [0,1]) or
 * oc_augment_batch_u8() (uint8 images, 0..255 read as value/255) once per
 * view per step. Every image gets its own random parameters, drawn from a
 * seeded oc_rng_t, so the same seed gives the same views (bit for bit with
 * the same build; across compilers and C libraries up to libm rounding).
 *
 * The pipeline, in this order, each step applied with its own probability:
 *
 * 1. geometry, resampled once (bilinear) from the input into the output:
 *    random resized crop (torchvision RandomResizedCrop), then a random
 *    affine map (rotation, shear, translation, scale; torchvision
 *    RandomAffine, fill 0), then a horizontal flip;
 * 2. colour jitter (torchvision ColorJitter: brightness, contrast,
 *    saturation, hue in a random order; saturation and hue need 3 channels);
 * 3. random grayscale (3 channels only; ITU-R 601 luma);
 * 4. Gaussian blur;
 * 5. Gaussian noise;
 * 6. clamping to [0,1] (optional, on by default).
 *
 * The transforms are also callable one by one on single CHW images
 * (oc_aug_*). Each is specified by its documentation; the pipeline applies
 * exactly these functions, except that it composes crop, affine and flip into
 * one resampling so the image is interpolated once (with the affine off, the
 * geometry equals oc_aug_resized_crop() then oc_aug_hflip() bit for bit).
 *
 * Nothing is allocated for usual sizes: the blur's line buffer lives on the
 * stack up to 6144 floats (ksize + max(w + ksize, 16 (h + ksize)); about
 * 32 KB of stack in all); larger images allocate one buffer per call. To log
 * or replay views, call oc_augment_sample() and oc_augment_apply() yourself:
 * oc_augment_batch() is exactly that loop.
 *
 * Functions return OC_OK (NULL) or a status that the caller frees with
 * oc_status_free(); they never print or exit. The library is thread-compatible:
 * use one oc_rng_t per thread.
 *
 * Link with the CMake target `onnxc_augment`.
 */
#ifndef ONNXC_AUGMENT_H
#define ONNXC_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "onnxc/onnxc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Random numbers                                                           */
/* ------------------------------------------------------------------------ */

/** A xoshiro256** generator (Blackman and Vigna). Plain data: copy it to fork
 * a stream, store it to resume one. Seed it with oc_rng_seed(). */
typedef struct oc_rng_s {
  uint64_t s[4]; /**< the generator state; never all zero */
} oc_rng_t;

/** Seeds |rng| from |seed| (any value, 0 included) through SplitMix64. */
OC_API void oc_rng_seed(oc_rng_t *rng, uint64_t seed);
/** The next 64 uniformly distributed bits of |rng|. */
OC_API uint64_t oc_rng_next(oc_rng_t *rng);
/** A uniform double in [0, 1) with 53 random bits (one oc_rng_next()). */
OC_API double oc_rng_uniform(oc_rng_t *rng);
/** A standard normal double (mean 0, standard deviation 1), by Marsaglia
 * and Tsang's ziggurat: one oc_rng_next() for all but a few percent of
 * calls, which take more. */
OC_API double oc_rng_normal(oc_rng_t *rng);

/* ------------------------------------------------------------------------ */
/* The pipeline                                                             */
/* ------------------------------------------------------------------------ */

/** What oc_augment_batch() does to each image. Fill with
 * oc_augment_options_init() (SimCLR's ImageNet recipe) or
 * oc_augment_options_init_digits() (MNIST-like digits), then change fields.
 * Every `*_p` is the probability, in [0,1], that the step is applied to an
 * image; a step with probability 0 draws no parameters that matter. */
typedef struct oc_augment_options_s {
  /** Random resized crop: probability; when not applied the whole image is
   * resized to the output size. Default 1. */
  double crop_p;
  /** Crop area as a fraction of the input area: uniform in
   * [crop_scale_min, crop_scale_max], 0 < min <= max. Default 0.08. */
  double crop_scale_min;
  /** Upper end of the crop area fraction. Default 1. */
  double crop_scale_max;
  /** Crop aspect ratio (width / height): log-uniform in
   * [crop_ratio_min, crop_ratio_max], 0 < min <= max. Default 3/4. */
  double crop_ratio_min;
  /** Upper end of the crop aspect ratio. Default 4/3. */
  double crop_ratio_max;

  /** Random affine map of the cropped image about its centre (bilinear,
   * fill 0): probability. Default 0. */
  double affine_p;
  /** Rotation angle uniform in [-affine_degrees, affine_degrees] degrees
   * (clockwise positive, as torchvision's F.affine). Default 0. */
  double affine_degrees;
  /** Horizontal shear angle uniform in [-affine_shear, affine_shear] degrees,
   * in [0, 90). Default 0. */
  double affine_shear;
  /** Translation uniform in [-t*out_w, t*out_w] x [-t*out_h, t*out_h] pixels,
   * rounded to whole pixels, with t = affine_translate in [0,1]. Default 0. */
  double affine_translate;
  /** Zoom factor uniform in [affine_scale_min, affine_scale_max], 0 < min <=
   * max. Default 1. */
  double affine_scale_min;
  /** Upper end of the zoom factor. Default 1. */
  double affine_scale_max;

  /** Horizontal flip: probability. Default 0.5. */
  double hflip_p;

  /** Colour jitter: probability. Default 0.8. */
  double jitter_p;
  /** Brightness factor uniform in [max(0, 1 - b), 1 + b]; 0 disables.
   * Default 0.4. */
  double brightness;
  /** Contrast factor uniform in [max(0, 1 - c), 1 + c]; 0 disables.
   * Default 0.4. */
  double contrast;
  /** Saturation factor uniform in [max(0, 1 - s), 1 + s]; 0 disables; needs
   * 3 channels (skipped otherwise). Default 0.4. */
  double saturation;
  /** Hue shift uniform in [-hue, hue] turns, hue in [0, 0.5]; 0 disables;
   * needs 3 channels (skipped otherwise). Default 0.1. */
  double hue;

  /** Random grayscale: probability; applies to 3-channel images only.
   * Default 0.2. */
  double grayscale_p;

  /** Gaussian blur: probability. Default 0.5. */
  double blur_p;
  /** Kernel size in pixels (odd, >= 1), or 0 for about 10% of the side
   * s = min(out_h, out_w), SimCLR's rule 2 * ((s / 10) / 2) + 1 in integers,
   * at least 3 (23 for 224, 9 for 96, 3 for 28 or 32). Default 0. */
  int64_t blur_kernel_size;
  /** Blur sigma uniform in [blur_sigma_min, blur_sigma_max] pixels,
   * 0 < min <= max. Default 0.1. */
  double blur_sigma_min;
  /** Upper end of the blur sigma. Default 2. */
  double blur_sigma_max;

  /** Additive Gaussian noise: probability. Default 0. */
  double noise_p;
  /** Standard deviation of the noise (>= 0). Default 0. */
  double noise_std;

  /** Nonzero: clamp the result to [0,1] (it matters after noise; every
   * other step keeps [0,1] images in [0,1]). Default 1. */
  int clamp;
} oc_augment_options_t;

/** Fills |o| with SimCLR's ImageNet recipe: crop scale [0.08, 1], ratio
 * [3/4, 4/3]; flip 0.5; colour jitter 0.8 with brightness, contrast,
 * saturation 0.4 and hue 0.1; grayscale 0.2; blur 0.5 with a kernel of 10% of
 * the image and sigma in [0.1, 2]; no affine, no noise; clamp. */
OC_API void oc_augment_options_init(oc_augment_options_t *o);

/** Fills |o| with a recipe for MNIST-like digits (1 channel, flip-sensitive):
 * crop scale [0.5, 1], ratio [3/4, 4/3]; affine 0.8 with rotation +-15
 * degrees and shear +-10 degrees; no flip; jitter 0.8 with brightness 0.4 and
 * contrast 0.4 only; no grayscale; blur 0.2 with SimCLR's kernel size (3
 * for 28 x 28) and sigma in [0.1, 1]; noise 0.5 with std 0.1; clamp. The
 * crop keeps at least half of the digit and the affine stays small so that
 * views of a 6 never look like a 9 or a 7 like a 1; noise and blur stand in
 * for the colour distortions that a gray digit does not have. */
OC_API void oc_augment_options_init_digits(oc_augment_options_t *o);

/** The random parameters of one view of one image: what
 * oc_augment_sample() drew and oc_augment_apply() applies. */
typedef struct oc_augment_params_s {
  int64_t crop_top;    /**< crop box: first input row */
  int64_t crop_left;   /**< crop box: first input column */
  int64_t crop_height; /**< crop box: rows (>= 1) */
  int64_t crop_width;  /**< crop box: columns (>= 1) */
  int affine;          /**< nonzero: apply the affine map below */
  double angle;        /**< affine rotation, degrees clockwise */
  double shear;        /**< affine horizontal shear, degrees */
  double translate_x;  /**< affine translation, output pixels (right) */
  double translate_y;  /**< affine translation, output pixels (down) */
  double scale;        /**< affine zoom factor (> 0) */
  int hflip;           /**< nonzero: flip horizontally */
  int jitter;          /**< nonzero: apply the colour jitter below */
  /** The order of the jitter steps: a permutation of 0 (brightness),
   * 1 (contrast), 2 (saturation), 3 (hue). */
  int jitter_order[4];
  double brightness;   /**< brightness factor (1 = unchanged) */
  double contrast;     /**< contrast factor (1 = unchanged) */
  double saturation;   /**< saturation factor (1 = unchanged; 3 channels) */
  double hue;          /**< hue shift in turns (0 = unchanged; 3 channels) */
  int grayscale;       /**< nonzero: convert to grayscale (3 channels) */
  int blur;            /**< nonzero: blur with the two fields below */
  int64_t blur_kernel_size; /**< odd blur kernel size */
  double blur_sigma;   /**< blur sigma, pixels */
  int noise;           /**< nonzero: add noise with the two fields below */
  double noise_std;    /**< noise standard deviation */
  uint64_t noise_seed; /**< seed of the noise's own oc_rng_t */
  int clamp;           /**< nonzero: clamp the result to [0,1] */
} oc_augment_params_t;

/** Draws the parameters of one view of a C x H x W image to be augmented to
 * out_h x out_w. Consumes exactly one oc_rng_next() of |rng| (each step then
 * draws from its own stream derived from that value, so changing one step's
 * options never changes another step's parameters). Errors: NULL arguments,
 * sizes < 1, options out of range (INVALID_ARGUMENT). */
OC_API oc_status_t oc_augment_sample(const oc_augment_options_t *o, oc_rng_t *rng, int64_t c,
                                     int64_t h, int64_t w, int64_t out_h, int64_t out_w,
                                     oc_augment_params_t *out_params);

/** Applies |p| to one C x H x W float image |in| (values in [0,1]), writing
 * C x out_h x out_w to |out| (which must not overlap |in|). Errors: NULL
 * arguments, sizes < 1, a crop box outside the image, parameters out of
 * range (INVALID_ARGUMENT); OUT_OF_MEMORY when a large image's blur buffer
 * cannot be allocated. */
OC_API oc_status_t oc_augment_apply(const oc_augment_params_t *p, const float *in, int64_t c,
                                    int64_t h, int64_t w, float *out, int64_t out_h,
                                    int64_t out_w);

/** oc_augment_apply() for a uint8 image (value v read as v / 255). */
OC_API oc_status_t oc_augment_apply_u8(const oc_augment_params_t *p, const uint8_t *in,
                                       int64_t c, int64_t h, int64_t w, float *out,
                                       int64_t out_h, int64_t out_w);

/** Augments a batch: for each of the |n| images of the NCHW float tensor |in|
 * (values in [0,1]) in order, oc_augment_sample() then oc_augment_apply(),
 * writing the n x c x out_h x out_w tensor |out| (not overlapping |in|). Each
 * image consumes exactly one draw of |rng|, so the same seed gives the same
 * views, and the views of image i do not depend on the other images. For two
 * views, call it twice (the second call continues the stream). Errors: as
 * oc_augment_sample() and oc_augment_apply(), plus sizes whose product
 * overflows (INVALID_ARGUMENT). Everything is checked before anything is
 * drawn or written: on error |out| and |rng| are untouched. */
OC_API oc_status_t oc_augment_batch(const oc_augment_options_t *o, oc_rng_t *rng,
                                    const float *in, int64_t n, int64_t c, int64_t h, int64_t w,
                                    float *out, int64_t out_h, int64_t out_w);

/** oc_augment_batch() for a uint8 NCHW tensor (value v read as v / 255). */
OC_API oc_status_t oc_augment_batch_u8(const oc_augment_options_t *o, oc_rng_t *rng,
                                       const uint8_t *in, int64_t n, int64_t c, int64_t h,
                                       int64_t w, float *out, int64_t out_h, int64_t out_w);

/* ------------------------------------------------------------------------ */
/* The transforms, one C x H x W float image at a time                      */
/* ------------------------------------------------------------------------ */

/** Crops the box (top, left, crop_h, crop_w), which must lie inside the
 * H x W image, and resizes it to out_h x out_w bilinearly with
 * align_corners=False and no antialiasing, like torchvision's resized_crop
 * (torch.nn.functional.interpolate(mode="bilinear")): output pixel x samples
 * the box at max(0, (x + 0.5) * crop_w / out_w - 0.5), neighbours clamped to
 * the box. The full box at the same size is the identity. |out| must not
 * overlap |in|. */
OC_API oc_status_t oc_aug_resized_crop(const float *in, int64_t c, int64_t h, int64_t w,
                                       int64_t top, int64_t left, int64_t crop_h,
                                       int64_t crop_w, float *out, int64_t out_h, int64_t out_w);

/** Mirrors the image left to right: out[y][x] = in[y][w - 1 - x]. |out| may
 * equal |in|. */
OC_API oc_status_t oc_aug_hflip(const float *in, int64_t c, int64_t h, int64_t w, float *out);

/** Brightness (torchvision adjust_brightness): out = clamp(factor * in, 0, 1),
 * factor >= 0. |out| may equal |in|. */
OC_API oc_status_t oc_aug_adjust_brightness(const float *in, int64_t c, int64_t h, int64_t w,
                                            double factor, float *out);

/** Contrast (torchvision adjust_contrast): out = clamp(factor * in +
 * (1 - factor) * m, 0, 1), factor >= 0, where m is the mean of the image's
 * luma (3 channels, as oc_aug_grayscale()) or of all its values (other
 * channel counts). |out| may equal |in|. */
OC_API oc_status_t oc_aug_adjust_contrast(const float *in, int64_t c, int64_t h, int64_t w,
                                          double factor, float *out);

/** Saturation (torchvision adjust_saturation): out = clamp(factor * in +
 * (1 - factor) * luma, 0, 1), factor >= 0. One channel: a copy (as
 * torchvision); channel counts other than 1 and 3: INVALID_ARGUMENT. |out| may
 * equal |in|. */
OC_API oc_status_t oc_aug_adjust_saturation(const float *in, int64_t c, int64_t h, int64_t w,
                                            double factor, float *out);

/** Hue (torchvision adjust_hue): converts RGB to HSV, adds |shift| (turns, in
 * [-0.5, 0.5]) to the hue modulo 1 and converts back, with torchvision's
 * formulas. One channel: a copy; channel counts other than 1 and 3:
 * INVALID_ARGUMENT. |out| may equal |in|. */
OC_API oc_status_t oc_aug_adjust_hue(const float *in, int64_t c, int64_t h, int64_t w,
                                     double shift, float *out);

/** Grayscale of a 3-channel RGB image (torchvision rgb_to_grayscale, ITU-R
 * 601): every output channel is 0.2989 R + 0.587 G + 0.114 B. Other channel
 * counts: INVALID_ARGUMENT. |out| may equal |in|. */
OC_API oc_status_t oc_aug_grayscale(const float *in, int64_t c, int64_t h, int64_t w,
                                    float *out);

/** Gaussian blur, separable, per channel: the kernel of odd size |ksize|
 * has weights exp(-k^2 / (2 sigma^2)) for k = -(ksize-1)/2 .. (ksize-1)/2,
 * normalised to sum to 1 (torchvision's kernel), sigma > 0. The image is
 * extended by half-sample symmetric reflection (... b a | a b c ... y z | z y
 * ..., numpy's "symmetric"), repeated for kernels wider than the image. With
 * a symmetric kernel this extension makes the blur preserve every row's and
 * column's sum, hence the image mean, exactly (up to rounding). (torchvision
 * reflects without repeating the edge pixel; the difference is one pixel of
 * mirror offset at the borders.) |out| may equal |in|. */
OC_API oc_status_t oc_aug_gaussian_blur(const float *in, int64_t c, int64_t h, int64_t w,
                                        double sigma, int64_t ksize, float *out);

/** Affine map about the image centre, torchvision's F.affine on tensors:
 * output pixel (x, y) samples the input at the inverse of
 * T(translate) * C * R(angle) * Sh(shear) * S(scale) * C^-1, bilinear with
 * zero padding (grid_sample, align_corners=False). |angle| is in degrees,
 * clockwise positive (as F.affine; F.rotate's counter-clockwise angle a is
 * angle -a here); |shear|, the horizontal shear, in degrees in (-90, 90):
 * output (x, y) about the centre samples x + tan(shear) y; translation in
 * pixels (right, down); |scale| > 0. Angle 0, shear 0, translation 0 and scale 1 is the
 * identity. |out| must not overlap |in|. */
OC_API oc_status_t oc_aug_affine(const float *in, int64_t c, int64_t h, int64_t w, double angle,
                                 double shear, double translate_x, double translate_y,
                                 double scale, float *out);

/** Additive Gaussian noise: out = in + std * z, one standard normal z per
 * value drawn from |rng| as oc_rng_normal() does, in memory order. Not
 * clamped; std >= 0; std 0 is a copy and draws nothing. |out| may equal
 * |in|. */
OC_API oc_status_t oc_aug_noise(const float *in, int64_t c, int64_t h, int64_t w, double std,
                                oc_rng_t *rng, float *out);

#ifdef __cplusplus
}
#endif

#endif
