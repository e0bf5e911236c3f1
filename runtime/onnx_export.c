/* Export of a trained plan back to ONNX (`onnxrun --export-onnx`). */
#include <stdlib.h>
#include <string.h>

#include "onnx_export.h"
#include "onnx_wire.h"
#include "tensor_file.h"

oc_status_t oc_export_onnx(const oc_plan_t *plan, oc_context_t *ctx, const char *path) {
  const void *skeleton;
  size_t n;
  OC_RETURN_IF_ERROR(oc_plan_source_model(plan, &skeleton, &n));
  /* The model came from onnxc, whose --max-depth is at most the cap; a
   * deeper one was made by hand, and protobuf-c's recursive decoder must not
   * see it. */
  oc_status_t ns = oc_onnx_check_nesting(skeleton, n, OC_ONNX_MAX_DEPTH_CAP, "");
  if (ns) return oc_status_wrap(ns, "the plan's source model: ");
  Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, n, skeleton);
  if (!mp || !mp->graph) {
    if (mp) onnx__model_proto__free_unpacked(mp, NULL);
    return oc_make_status(OC_STATUS_CORRUPT, "the plan's source model does not decode");
  }
  oc_status_t s = OC_OK;
  size_t n_init = mp->graph->n_initializer;
  ProtobufCBinaryData *saved = calloc(n_init + 1, sizeof(ProtobufCBinaryData));
  char *was_set = calloc(n_init + 1, 1);
  if (!saved || !was_set) s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  size_t filled = 0;
  for (size_t i = 0; !s && i < n_init; i++) {
    Onnx__TensorProto *tp = mp->graph->initializer[i];
    int idx = tp->name ? oc_plan_state_index(plan, tp->name) : -1;
    if (idx < 0) continue;
    oc_tensor_info_t info;
    void *data;
    size_t bytes;
    s = oc_plan_state_info(plan, idx, &info);
    if (!s) s = oc_context_state(ctx, idx, &data, &bytes);
    if (s) break;
    if ((int)info.dtype != tp->data_type || info.rank != (int)tp->n_dims) {
      s = oc_make_status(OC_STATUS_CORRUPT, "initializer '%s' does not match the plan's state",
                         tp->name);
      break;
    }
    /* Point raw_data at the context's state (no copy); restored below so
     * protobuf-c frees only what it allocated. */
    saved[i] = tp->raw_data;
    was_set[i] = 1;
    tp->has_raw_data = 1;
    tp->raw_data.data = data;
    tp->raw_data.len = bytes;
    filled++;
  }
  uint8_t *out = NULL;
  size_t out_n = 0;
  if (!s) {
    out_n = onnx__model_proto__get_packed_size(mp);
    out = malloc(out_n ? out_n : 1);
    if (!out)
      s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    else
      onnx__model_proto__pack(mp, out);
  }
  for (size_t i = 0; saved && was_set && i < n_init; i++)
    if (was_set[i]) mp->graph->initializer[i]->raw_data = saved[i];
  free(saved);
  free(was_set);
  onnx__model_proto__free_unpacked(mp, NULL);
  if (!s) s = oc_file_write_atomic(path, out, out_n);
  free(out);
  return s;
}
