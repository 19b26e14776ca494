#pragma once
// Grad-CAM of a whole pipeline on one image (explain::gradcam_for_class with the pipeline's head,
// normalisation and padding), and its hook into any_pipeline.
//
//   xt::xtensor<float, 2> cam = train::pipeline_gradcam(p, image, /*class*/ 1);   // [H, W] in [0, 1]
//
// Include this header before a pipeline_holder<P> is instantiated so any_pipeline::gradcam uses it.
#include <vector>

#include <xtensor/xtensor.hpp>

#include "microcount/explain/gradcam.hpp"
#include "microcount/train/any_pipeline.hpp"
#include "microcount/train/pipeline.hpp"

namespace microcount::train {

template <class P>
xt::xtensor<float, 2> pipeline_gradcam(P& p, const io::image& im, int label) {
  using H = typename P::head_type;
  using B = typename P::backend_type;
  require(label >= 0 && label < p.classes(), "gradcam", "class " + std::to_string(label) + " of " + std::to_string(p.classes()));
  const data::sample s = p.normalized(im);
  const auto& px = s.image.pixels;  // [1, C, H, W]
  const index_t c = static_cast<index_t>(px.shape()[1]), h = static_cast<index_t>(px.shape()[2]), w = static_cast<index_t>(px.shape()[3]);
  // A U-Net needs sides divisible by 2^depth: pad with the edge values, explain, crop back.
  index_t ph = h, pw = w;
  if constexpr (H::dense) {
    const auto div = infer::size_divisor<typename P::spec_type>(model_traits<typename P::spec_type>::config(p.hp(), p.channels(), p.classes()));
    ph = (h + div[0] - 1) / div[0] * div[0];
    pw = (w + div[1] - 1) / div[1] * div[1];
  }
  std::vector<float> padded(static_cast<std::size_t>(c * ph * pw));  // [1, C, ph, pw] on the host
  for (index_t k = 0; k < c; ++k)
    for (index_t y = 0; y < ph; ++y)
      for (index_t xx = 0; xx < pw; ++xx)
        padded[static_cast<std::size_t>((k * ph + y) * pw + xx)] = px(0, k, std::min(y, h - 1), std::min(xx, w - 1));
  tensor<float, B> x({1, c, ph, pw});  // [1, C, ph, pw] in B's memory
  x.upload(padded.data());
  const explain::head_kind kind = H::name == std::string_view("density")     ? explain::head_kind::density
                                  : H::name == std::string_view("detection") ? explain::head_kind::detection
                                                                            : explain::head_kind::regression;
  const auto cam = explain::gradcam_for_class(p.network(), x, kind, label);  // [ph, pw]
  xt::xtensor<float, 2> out = xt::xtensor<float, 2>::from_shape({static_cast<std::size_t>(h), static_cast<std::size_t>(w)});
  for (index_t y = 0; y < h; ++y)
    for (index_t xx = 0; xx < w; ++xx) out(y, xx) = cam(y, xx);
  return out;
}

template <counting_head H, class Spec, backend_tag B>
struct pipeline_extras<pipeline<H, Spec, B>> {
  static xt::xtensor<float, 2> gradcam(pipeline<H, Spec, B>& p, const io::image& im, int label) {
    return pipeline_gradcam(p, im, label);
  }
};

}  // namespace microcount::train
