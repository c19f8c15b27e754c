// Copyright (c) mmdynamic contributors. All rights reserved.
//
// One refine block of SAR-ResNet on its selected mask cells, in one call (sparse_impl='halo_cpp').
//
// The same computation as the PyTorch reference mmdynamic/models/layers/sar_sparse_halo.py: the G
// groups' selected cells are paired slot by slot (slot n of group g is the n-th selected cell of
// g in increasing order; groups with fewer cells get zero slots whose output is dropped), so every
// conv is one grouped oneDNN convolution whatever G. What this file adds is that the cell lists,
// the gathers of pixel rows and of haloed windows and the scatter-add of the last conv's output
// are plain loops (parallel over cells with at::parallel_for) reading the masks directly, instead
// of about fifteen small integer tensor ops per block that build index tensors, and that every
// convolution runs with the ReLU fused and its weight packed once per input shape into oneDNN's
// blocked layout (class RefineCells, which holds a block's folded convs).
//
// Layouts: maps are pixel matrices (B * H * W, C) (a channels-last map), H x W a whole number of
// ph x pw cells; a batch of cells is (N, rows, cols, C) channels-last; groups' channels side by
// side (channel block g belongs to group g).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/extension.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace {

// The cells a conv is computed on, all groups together.
struct CellSet {
  int64_t slots = 0;                  // N: the largest number of cells selected in a group
  std::vector<int64_t> count;         // (G, ): cells selected in group g
  std::vector<int64_t> cell;          // (N, G): cell id of slot n in group g, -1 on the padding
  std::vector<int64_t> slot_of;       // (G, cells): slot of a cell in group g, -1 if unselected
};

// The selected cells of mask (B, G, K_h, K_w); cell id b * K_h * K_w + i * K_w + j.
CellSet cell_set(const at::Tensor& mask) {
  const int64_t batch = mask.size(0), groups = mask.size(1);
  const int64_t per_image = mask.size(2) * mask.size(3), cells = batch * per_image;
  const at::Tensor selected = mask.ne(0).contiguous();
  const bool* m = selected.data_ptr<bool>();
  CellSet set;
  set.count.assign(groups, 0);
  set.slot_of.assign(groups * cells, -1);
  std::vector<std::vector<int64_t>> lists(groups);
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t b = 0; b < batch; ++b) {
      const bool* row = m + (b * groups + g) * per_image;
      for (int64_t k = 0; k < per_image; ++k) {
        if (row[k]) {
          set.slot_of[g * cells + b * per_image + k] = static_cast<int64_t>(lists[g].size());
          lists[g].push_back(b * per_image + k);
        }
      }
    }
    set.count[g] = static_cast<int64_t>(lists[g].size());
    set.slots = std::max(set.slots, set.count[g]);
  }
  set.cell.assign(set.slots * groups, -1);
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t n = 0; n < set.count[g]; ++n) set.cell[n * groups + g] = lists[g][n];
  }
  return set;
}

// Geometry of the cells of one block call.
struct Grid {
  int64_t batch, groups, grid_h, grid_w, cell_h, cell_w;
  int64_t height() const { return grid_h * cell_h; }
  int64_t width() const { return grid_w * cell_w; }
  int64_t cells() const { return batch * grid_h * grid_w; }
  int64_t pixels_per_cell() const { return cell_h * cell_w; }
  // flat pixel index in the (B, H, W) map of pixel (y, x) of image b
  int64_t pixel(int64_t b, int64_t y, int64_t x) const { return (b * height() + y) * width() + x; }
  // flat pixel index of pixel q (row-major in the cell) of cell id c
  int64_t cell_pixel(int64_t c, int64_t q) const {
    const int64_t per_image = grid_h * grid_w, b = c / per_image, k = c % per_image;
    return pixel(b, (k / grid_w) * cell_h + q / cell_w, (k % grid_w) * cell_w + q % cell_w);
  }
};

// Rows (N * ph * pw, C) of the pixels of the cells of set, read from the map x (B * H * W, C);
// zeros on the padding slots.
at::Tensor gather_rows(const at::Tensor& x, const CellSet& set, const Grid& grid) {
  const int64_t channels = x.size(1), per_group = channels / grid.groups;
  const int64_t q_count = grid.pixels_per_cell();
  at::Tensor rows = at::empty({set.slots * q_count, channels}, x.options());
  const float* src = x.data_ptr<float>();
  float* dst = rows.data_ptr<float>();
  at::parallel_for(0, set.slots, 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      for (int64_t g = 0; g < grid.groups; ++g) {
        const int64_t c = set.cell[n * grid.groups + g];
        for (int64_t q = 0; q < q_count; ++q) {
          float* out = dst + (n * q_count + q) * channels + g * per_group;
          if (c < 0) {
            std::memset(out, 0, per_group * sizeof(float));
          } else {
            std::memcpy(out, src + grid.cell_pixel(c, q) * channels + g * per_group,
                        per_group * sizeof(float));
          }
        }
      }
    }
  });
  return rows;
}

// Where a window reads its pixels: the masked map, either the block input (a map, gated by the
// cells selected in each group) or the rows of the cells of `source` (zeros elsewhere).
struct Source {
  const float* data;
  int64_t channels;
  const CellSet* set;
  bool rows;              // data is (slots * ph * pw, C) rows of set, else a (B * H * W, C) map
  const float* valid;     // (B * H * W, ) 1 inside the unpadded map, or nullptr
};

// Haloed windows (N', ph + 2 p, pw + 2 p, C) of the cells of target on the masked map of source,
// zero-padded by p at the map border; zeros on the padding slots of target.
at::Tensor gather_windows(const Source& source, const CellSet& target, const Grid& grid,
                          int64_t halo, const at::TensorOptions& options) {
  const int64_t channels = source.channels, per_group = channels / grid.groups;
  const int64_t win_h = grid.cell_h + 2 * halo, win_w = grid.cell_w + 2 * halo;
  const int64_t per_image = grid.grid_h * grid.grid_w, cells = grid.cells();
  at::Tensor windows = at::empty({target.slots, win_h, win_w, channels}, options);
  float* dst = windows.data_ptr<float>();
  at::parallel_for(0, target.slots, 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      for (int64_t g = 0; g < grid.groups; ++g) {
        const int64_t c = target.cell[n * grid.groups + g];
        const int64_t b = c / per_image, k = c % per_image;
        const int64_t top = (k / grid.grid_w) * grid.cell_h - halo;
        const int64_t left = (k % grid.grid_w) * grid.cell_w - halo;
        const int64_t* slot_of = source.set->slot_of.data() + g * cells;
        for (int64_t wy = 0; wy < win_h; ++wy) {
          for (int64_t wx = 0; wx < win_w; ++wx) {
            float* out = dst + ((n * win_h + wy) * win_w + wx) * channels + g * per_group;
            const int64_t y = top + wy, x = left + wx;
            const float* in = nullptr;
            if (c >= 0 && y >= 0 && y < grid.height() && x >= 0 && x < grid.width()) {
              const int64_t pixel = grid.pixel(b, y, x);
              const int64_t s = slot_of[b * per_image + (y / grid.cell_h) * grid.grid_w +
                                        x / grid.cell_w];
              if (s >= 0 && (source.valid == nullptr || source.valid[pixel] != 0.f)) {
                const int64_t row = source.rows
                    ? s * grid.pixels_per_cell() + (y % grid.cell_h) * grid.cell_w +
                          x % grid.cell_w
                    : pixel;
                in = source.data + row * channels + g * per_group;
              }
            }
            if (in == nullptr) {
              std::memset(out, 0, per_group * sizeof(float));
            } else {
              std::memcpy(out, in, per_group * sizeof(float));
            }
          }
        }
      }
    }
  });
  return windows;
}

// out (B * H * W, C) += rows (N * ph * pw, C) on the selected slots of set (padding dropped).
void scatter_add_rows(at::Tensor& out, const at::Tensor& rows, const CellSet& set,
                      const Grid& grid) {
  const int64_t channels = out.size(1), per_group = channels / grid.groups;
  const int64_t q_count = grid.pixels_per_cell();
  const float* src = rows.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  // cells of one group are disjoint and groups own disjoint channels: no two slots write the same
  // float
  at::parallel_for(0, set.slots, 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      for (int64_t g = 0; g < grid.groups; ++g) {
        const int64_t c = set.cell[n * grid.groups + g];
        if (c < 0) continue;
        for (int64_t q = 0; q < q_count; ++q) {
          float* o = dst + grid.cell_pixel(c, q) * channels + g * per_group;
          const float* r = src + (n * q_count + q) * channels + g * per_group;
          for (int64_t i = 0; i < per_group; ++i) o[i] += r[i];
        }
      }
    }
  });
}

// A grouped convolution with padding 0 (and the ReLU fused when relu) through oneDNN's
// mkldnn::_convolution_pointwise, which takes dense channels-last or pre-packed weights.
at::Tensor conv(const at::Tensor& input, const at::Tensor& weight,
                const c10::optional<at::Tensor>& bias, int64_t dilation, int64_t groups,
                bool relu) {
  static const c10::OperatorHandle op =
      c10::Dispatcher::singleton().findSchemaOrThrow("mkldnn::_convolution_pointwise", "");
  std::vector<c10::IValue> stack{
      input, weight, bias, std::vector<int64_t>{0, 0}, std::vector<int64_t>{1, 1},
      std::vector<int64_t>{dilation, dilation}, groups, std::string(relu ? "relu" : "none"),
      c10::List<c10::optional<c10::Scalar>>(), c10::IValue(std::string())};
  op.callBoxed(&stack);
  return stack[0].toTensor();
}

void check_float_map(const at::Tensor& t, const char* name, int64_t pixels) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kFloat && t.dim() == 2 &&
                  t.is_contiguous() && t.size(0) == pixels,
              "sar_cells: ", name, " must be a contiguous float32 CPU pixel matrix with ", pixels,
              " rows, got ", t.sizes(), " ", t.scalar_type(), " on ", t.device());
}

}  // namespace

// A refine block's folded convs, ready for refine(): each conv's weight, also packed into
// oneDNN's blocked layout per input shape (cached; a dense channels-last weight is reordered by
// oneDNN on every call, and a weight packed for another shape can hit a slow reorder).
class RefineCells {
 public:
  // Per conv: weight (C_out, C_in / G, k, k), bias (C_out, ) or None, kernel k, dilation d
  // (padding d (k // 2)), relu after it; groups G; pack: pack the weights per input shape (else
  // oneDNN reorders the dense weights on every call).
  RefineCells(std::vector<at::Tensor> weights, std::vector<c10::optional<at::Tensor>> biases,
              std::vector<int64_t> kernels, std::vector<int64_t> dilations,
              std::vector<bool> relus, int64_t groups, bool pack)
      : weights_(std::move(weights)), biases_(std::move(biases)), kernels_(std::move(kernels)),
        dilations_(std::move(dilations)), relus_(std::move(relus)), groups_(groups),
        packed_(weights_.size()), can_pack_(pack) {
    const size_t steps = weights_.size();
    TORCH_CHECK(steps > 0 && biases_.size() == steps && kernels_.size() == steps &&
                    dilations_.size() == steps && relus_.size() == steps,
                "sar_cells: weights, biases, kernels, dilations and relus must have one entry "
                "per conv");
    for (auto& weight : weights_) {
      TORCH_CHECK(weight.device().is_cpu() && weight.scalar_type() == at::kFloat &&
                      weight.dim() == 4,
                  "sar_cells: weights must be 4-d float32 CPU tensors, got ", weight.sizes());
      weight = weight.contiguous(at::MemoryFormat::ChannelsLast);
    }
  }

  // All groups of the block on their selected cells; adds the last conv's output to out.
  //
  // x: (B * H * W, C_in) block input; out: (B * H * W, C_out) output being built, updated in
  // place; mask_in: (B, G, K_h, K_w) the selected cells; mask_out: the cells the last conv is
  // computed on (mask_in, or more when a last k x k conv reaches into unselected cells); valid:
  // (B * H * W, 1) 1 inside the unpadded map (None without padding); cell_h, cell_w: ph, pw.
  void refine(const at::Tensor& x, at::Tensor out, const at::Tensor& mask_in,
              const at::Tensor& mask_out, const c10::optional<at::Tensor>& valid, int64_t cell_h,
              int64_t cell_w) {
    TORCH_CHECK(mask_in.dim() == 4 && mask_out.sizes() == mask_in.sizes() &&
                    mask_in.size(1) == groups_,
                "sar_cells: masks must be (B, ", groups_, ", K_h, K_w) of one shape, got ",
                mask_in.sizes(), " and ", mask_out.sizes());
    const Grid grid{mask_in.size(0), groups_, mask_in.size(2), mask_in.size(3), cell_h, cell_w};
    const int64_t pixels = grid.batch * grid.height() * grid.width();
    check_float_map(x, "x", pixels);
    check_float_map(out, "out", pixels);
    TORCH_CHECK(x.size(1) % groups_ == 0 && out.size(1) % groups_ == 0, "sar_cells: channels ",
                x.size(1), " -> ", out.size(1), " not divisible by ", groups_, " groups");
    at::Tensor valid_flat;
    if (valid.has_value()) {
      valid_flat = valid->to(at::kFloat).contiguous().view(-1);
      TORCH_CHECK(valid_flat.size(0) == pixels, "sar_cells: valid must have ", pixels,
                  " entries");
    }
    const float* valid_ptr = valid.has_value() ? valid_flat.data_ptr<float>() : nullptr;

    const CellSet cells_in = cell_set(mask_in);
    if (cells_in.slots == 0) return;
    const bool same = mask_out.is_same(mask_in);
    const CellSet cells_out = same ? CellSet() : cell_set(mask_out);
    const CellSet* cells = &cells_in;
    at::Tensor h;  // rows (N * ph * pw, C) of the current cells; undefined before the first conv
    for (size_t k = 0; k < weights_.size(); ++k) {
      const int64_t kernel = kernels_[k], dilation = dilations_[k];
      at::Tensor input;
      if (kernel > 1) {
        const bool last = k + 1 == weights_.size();
        const CellSet* target = last && !same ? &cells_out : cells;
        const Source source = h.defined()
            ? Source{h.data_ptr<float>(), h.size(1), cells, true, valid_ptr}
            : Source{x.data_ptr<float>(), x.size(1), cells, false, nullptr};
        input = gather_windows(source, *target, grid, dilation * (kernel / 2), x.options())
                    .permute({0, 3, 1, 2});
        cells = target;
      } else {
        if (!h.defined()) h = gather_rows(x, *cells, grid);
        // (P, C) rows are a channels-last (1, C, P, 1) map
        input = h.view({1, h.size(0), 1, h.size(1)}).permute({0, 3, 1, 2});
      }
      const at::Tensor y = conv(input, weight_for(k, input), biases_[k], dilation, groups_,
                                relus_[k]);
      // (N, C, rows, cols) channels-last -> (N * rows * cols, C) rows, no copy
      h = y.permute({0, 2, 3, 1}).reshape({-1, y.size(1)});
    }
    scatter_add_rows(out, h.contiguous(), *cells, grid);
  }

 private:
  // Most input shapes whose packed weights are kept per conv (then the cache starts afresh).
  static constexpr size_t kMaxShapes = 16;

  // The weight of conv k for input: packed for its shape from the second call with that shape
  // on (a first call takes the dense weight, so steps rebuilt on every call never pack).
  at::Tensor weight_for(size_t k, const at::Tensor& input) {
    if (!can_pack_) return weights_[k];
    const std::vector<int64_t> shape(input.sizes().begin(), input.sizes().end());
    std::lock_guard<std::mutex> lock(mutex_);
    auto& cache = packed_[k];
    auto found = cache.find(shape);
    if (found == cache.end()) {
      if (cache.size() >= kMaxShapes) cache.clear();
      cache.emplace(shape, at::Tensor());  // seen once
      return weights_[k];
    }
    if (!found->second.defined()) {
      try {
        const int64_t d = dilations_[k];
        found->second = at::mkldnn_reorder_conv2d_weight(
            weights_[k].contiguous().to_mkldnn(), {0, 0}, {1, 1}, {d, d}, groups_, shape);
      } catch (const c10::Error&) {  // a torch built without MKLDNN tensors
        can_pack_ = false;
        return weights_[k];
      }
    }
    return found->second;
  }

  std::vector<at::Tensor> weights_;
  std::vector<c10::optional<at::Tensor>> biases_;
  std::vector<int64_t> kernels_, dilations_;
  std::vector<bool> relus_;
  int64_t groups_;
  std::vector<std::map<std::vector<int64_t>, at::Tensor>> packed_;
  bool can_pack_;
  std::mutex mutex_;
};

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  py::class_<RefineCells>(m, "RefineCells",
                          "A SAR refine block's folded convs, run on its selected cells")
      .def(py::init<std::vector<at::Tensor>, std::vector<c10::optional<at::Tensor>>,
                    std::vector<int64_t>, std::vector<int64_t>, std::vector<bool>, int64_t, bool>(),
           py::arg("weights"), py::arg("biases"), py::arg("kernels"), py::arg("dilations"),
           py::arg("relus"), py::arg("groups"), py::arg("pack") = true)
      .def("refine", &RefineCells::refine, py::arg("x"), py::arg("out"), py::arg("mask_in"),
           py::arg("mask_out"), py::arg("valid"), py::arg("cell_h"), py::arg("cell_w"));
}
