/* The library's version (from the CMake project version via onnxc/version.h). */
#include "onnxc/onnxc.h"

const char *oc_version_string(void) { return OC_VERSION_STRING; }

void oc_version(int *out_major, int *out_minor, int *out_patch) {
  if (out_major) *out_major = OC_VERSION_MAJOR;
  if (out_minor) *out_minor = OC_VERSION_MINOR;
  if (out_patch) *out_patch = OC_VERSION_PATCH;
}
