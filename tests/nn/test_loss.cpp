// Losses: closed forms on tiny inputs, PyTorch's own values and autograd gradients, central-difference
// gradient checks in double (NCHW and NCDHW, odd sizes), and bad input.
#include <cmath>
#include <string>
#include <vector>

#include "loss_test_support.hpp"

using namespace microcount;
using namespace microcount::test::loss;

namespace {

struct golden_loss {
  const char* name;
  double value;
  std::vector<double> gradient;  // dL/dx for the golden logits, [2, 3, 2, 2]
};

// From tests/nn/torch_reference.py (PyTorch 1.13, float64, autograd).
const std::vector<golden_loss>& torch_losses() {
  static const std::vector<golden_loss> table = {
  {"mse", 2.8092447916666665, {-0.20833333333333331, 0.03125, -0.09375, 0.14583333333333331, 0.020833333333333332, -0.19791666666666666, 0.13541666666666666, -0.083333333333333329, -0.20833333333333331, 0.125, -0.09375, -0.21875, 0.020833333333333332, -0.10416666666666666, 0.13541666666666666, 0.010416666666666666, -0.20833333333333331, 0.125, 0, -0.21875, 0.11458333333333333, -0.10416666666666666, -0.22916666666666666, 0.010416666666666666}},
  {"masked_mse", 1.98046875, {-0.625, 0, 0, 0.4375, 0, 0, 0.40625, 0, 0, 0.375, 0, 0, 0.0625, 0, 0, 0.03125, 0, 0, 0, 0, 0, -0.3125, 0, 0}},
  {"bce_pos_weight", 1.1410602083062562, {0.0031607575008851477, 0.004419107442916871, 0.005997559223749796, 0.0072559091657815227, 0.0096200658501062516, -0.073568374008241705, 0.018281059764185047, -0.052083333333333336, -0.0066915753534754936, 0.03406560317473515, -0.0022058662583864588, 0.0003590434904131596, -0.00078922589041646263, 0.00078922589041646263, 0.0020475758324481896, 0.010310805466743941, -0.085164007936837871, 0.01214145360255392, 0.020833333333333332, -0.055481014107589467, 0.029332336309647541, -0.0057932117500482964, -0.002442670520058829, -0.0010949812300259261}},
  {"focal_sigmoid_a025_g2", 0.15227120496509414, {3.9862029020715463e-05, -0.00016733729895011693, 0.0016497424991635421, 3.5775609964178005e-06, 0.0059714174216816303, -0.0081693688423316833, 0.0052080078698764944, -0.003107154116041524, -0.0019833181144681376, 0.030044521483448758, -0.0021640641366318459, 0.00016787290909337719, -0.00070902641316365647, 0.0011817106886060943, -7.6305867769716729e-05, 0.0027823681756695157, -0.010014840494482919, 0.0019833181144681368, 0.0093214623481245734, -0.0040506727876817167, 0.0179726114531297, -0.0035828504530089783, -5.9626016606957469e-06, -0.0007498829541652466}},
  {"focal_sigmoid_noalpha_g05", 0.64846318904467115, {0.0012888774034188026, 0.0018789125620235034, 0.0057836065456241936, 0.0029355247148888427, 0.014400675050885057, -0.028899748822518306, 0.017235072758701054, -0.019836902438618423, -0.011219341503924299, 0.03664885349389127, -0.0088324084509196002, 0.00013195103934343514, -0.0023498117117848076, 0.0023498117117848076, -0.00013195103934343319, 0.0088324084509196002, -0.03664885349389127, 0.011219341503924295, 0.019836902438618423, -0.017235072758701057, 0.028899748822518306, -0.014400675050885057, -0.0029355247148888401, -0.0057836065456241936}},
  {"cross_entropy_labels", 1.5616758737848861, {0.0062837828988654056, -0.090543969102599958, 0.0062837828988654056, 0.13120328096631476, -0.016643989424686492, 0.0042941267956534317, 0.12621315343245634, -0.13208732171957191, 0.010360206525821107, 0.086249842306946545, -0.13249693633132173, 0.00088404075325714828, -0.090543969102599958, 0, 0.13120328096631476, -0.090543969102599958, 0.0042941267956534317, 0, -0.13208732171957191, 0.0042941267956534317, 0.086249842306946545, 0, 0.00088404075325714828, 0.086249842306946545}},
  {"cross_entropy_soft", 1.9226156092913209, {-0.010951895856857064, 0.0075518766471827578, -0.010951895856857064, 0.076580720457483153, 0.075611423103865191, -0.077158932060260893, 0.075611423103865191, -0.071492699511083058, -0.064659527247008103, 0.069607055413078128, -0.064659527247008103, -0.0050880209464000863, 0.0075518766471827578, -0.010951895856857064, 0.012828211006541995, 0.029323821141860731, -0.077158932060260893, 0.075611423103865191, 0.0020365739129881849, -0.031067725203337372, 0.069607055413078128, -0.064659527247008103, -0.014864784919530158, 0.0017439040614766477}},
  {"focal_softmax_labels_g2_w", 1.5975213368634387, {0.00049108432807173062, -0.078595524472636819, 0.0038117138128820269, 0.31890160472491985, -0.0013007455054710715, 0.0037274613759636205, 0.076560318529266397, -0.32105034683547962, 0.00080966117739934233, 0.074868063096673196, -0.080372032342148417, 0.0021487421105598147, -0.078595524472636819, -0, 0.31890160472491985, -0.078595524472636819, 0.0037274613759636205, -0, -0.32105034683547962, 0.0037274613759636205, 0.074868063096673196, -0, 0.0021487421105598147, 0.074868063096673196}},
  {"tversky_softmax_labels", 0.48619951218232826, {0.0034064953732714722, -0.020956550602284751, 0.00037190344654080204, 0.0060692524160582068, -0.0095574165110367641, 0.00083351223055395615, 0.0090338584721020854, -0.0061557609246908843, 0.0061509211377653002, 0.020123038371730795, -0.0094057619186428878, 8.650850863267567e-05, -0.020956550602284751, 0, 0.0060692524160582068, -0.020956550602284751, 0.00083351223055395615, 0, -0.0061557609246908843, 0.00083351223055395615, 0.020123038371730795, 0, 8.650850863267567e-05, 0.020123038371730795}},
  {"tversky_sigmoid", 0.43827946208216195, {0.0023646199840063492, -0.001888195995622672, 0.0049277857266741745, -0.0012808274928489578, 0.0018222842930286226, -0.0056053903703354151, -0.00013787787299498864, -0.011662652682606156, -0.0014889145305572666, 0.0043422717797395628, -0.0058762191161976021, 0.0012822221651857379, -0.0035921914261968844, 0.0032237902960999629, -0.0018884020723248418, 0.001816560313990749, -0.0069577730773570327, -0.001089905274766107, 0.006472310479425686, -0.0020419326765372232, 0.0027279421994744124, -0.0084198494795953947, 0.00052343439830058428, -0.009172412413365626}},
  {"dice_none", 0.38947134955041307, {0.0016932855383074896, -0.0032072169233779576, 0.0031577291513740402, -0.0017109308393012509, 0.00031244823880781841, -0.0057241005937059631, -0.00069423597846798748, -0.011580195219942722, -0.0018481751934771935, 0.0031272499313356114, -0.0064027563284033808, 0.00079392796447313259, -0.0047984534420659579, 0.0015664926326860406, -0.0022783002355693744, -2.9575544926927946e-05, -0.0069085801253451398, -0.001528065755425858, 0.0043032470637612528, -0.0023618955323837267, 0.0016890907491958326, -0.0086688024987828134, 0.00011794605372725791, -0.009148458619678123}},
  };
  return table;
}

const golden_loss& torch_loss(const std::string& name) {
  for (const auto& g : torch_losses())
    if (name == g.name) return g;
  throw std::runtime_error("no golden loss " + name);
}

void check_against(const golden_loss& g, double value, const tensor64& gradient) {
  INFO(g.name);
  CHECK(value == doctest::Approx(g.value).epsilon(1e-12));
  REQUIRE(gradient.size() == static_cast<index_t>(g.gradient.size()));
  for (index_t i = 0; i < gradient.size(); ++i) CHECK(gradient[i] == doctest::Approx(g.gradient[i]).epsilon(1e-12));
}

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

}  // namespace

// ---- closed forms -----------------------------------------------------------------------------------

TEST_CASE("mse: closed form value and gradient, masked form, empty mask") {
  tensor64 p({1, 1, 2, 2}), t({1, 1, 2, 2}), mask({1, 1, 2, 2});
  const double pv[] = {1, 2, 3, 4}, tv[] = {0, 2, 5, 4}, mv[] = {1, 0, 0.5, 0};
  for (int i = 0; i < 4; ++i) p[i] = pv[i], t[i] = tv[i], mask[i] = mv[i];
  const auto r = nn::mse_loss{}.evaluate(p, t);
  CHECK(r.value == doctest::Approx(5.0 / 4));  // (1 + 0 + 4 + 0) / 4
  const double expected[] = {0.5, 0, -1, 0};   // 2/4 · (p − t)
  for (int i = 0; i < 4; ++i) CHECK(r.gradient[i] == doctest::Approx(expected[i]));

  const auto masked = nn::mse_loss{}.evaluate(p, t, mask);  // mask > 0 at elements 0 and 2
  CHECK(masked.value == doctest::Approx(5.0 / 2));
  const double expected_masked[] = {1, 0, -2, 0};  // 2/2 · (p − t) where used
  for (int i = 0; i < 4; ++i) CHECK(masked.gradient[i] == doctest::Approx(expected_masked[i]));

  tensor64 none = tensor64::zeros({1, 1, 2, 2});
  const auto empty = nn::mse_loss{}.evaluate(p, t, none);
  CHECK(empty.value == 0);
  for (int i = 0; i < 4; ++i) CHECK(empty.gradient[i] == 0);
  CHECK(nn::mse_loss{}.value(p, p) == 0);
}

TEST_CASE("bce with logits: closed forms, pos_weight, no overflow at large logits") {
  tensor64 x({1, 1, 1, 6}), t({1, 1, 1, 6});
  const double xv[] = {0, 2, 100, -100, 100, -100}, tv[] = {1, 0, 0, 1, 1, 0};
  for (int i = 0; i < 6; ++i) x[i] = xv[i], t[i] = tv[i];
  const double per[] = {std::log(2.0), std::log1p(std::exp(2.0)), 100, 100, std::exp(-100.0), std::exp(-100.0)};
  const auto r = nn::bce_with_logits_loss{}.evaluate(x, t);
  CHECK(r.value == doctest::Approx((per[0] + per[1] + per[2] + per[3] + per[4] + per[5]) / 6).epsilon(1e-14));
  for (int i = 0; i < 6; ++i) CHECK(r.gradient[i] == doctest::Approx((sigmoid(xv[i]) - tv[i]) / 6).epsilon(1e-14));

  // pos_weight w scales the positive term: ℓ(0, 1) = w·log 2, ℓ(2, 0) unchanged.
  const auto w = nn::bce_with_logits_loss{{3.0}}.evaluate(x, t);
  CHECK(w.value == doctest::Approx((3 * per[0] + per[1] + per[2] + 3 * per[3] + 3 * per[4] + per[5]) / 6).epsilon(1e-14));
  CHECK(w.gradient[0] == doctest::Approx(-3 * 0.5 / 6));  // (1 − t) − w·σ(−x) at x = 0, t = 1
}

TEST_CASE("focal (sigmoid): closed form; gamma 0 without alpha is BCE") {
  tensor64 x({1, 1, 1, 2}), t({1, 1, 1, 2});
  x[0] = 0, t[0] = 1;  // p = ½, ce = log 2, 1 − p_t = ½, α_t = ¼
  x[1] = 0, t[1] = 0;  // same, α_t = ¾
  const auto r = nn::focal_loss{}.evaluate(x, t);
  CHECK(r.value == doctest::Approx((0.25 + 0.75) * std::log(2.0) * 0.25 / 2).epsilon(1e-14));

  rng gen(11);
  const shape s{2, 3, 5, 7};
  const auto xs = filled<double, f64>(s, gen, -4, 4), ts = filled<double, f64>(s, gen, 0, 1);
  const auto bce = nn::bce_with_logits_loss{}.evaluate(xs, ts);
  const auto focal = nn::focal_loss{nn::focal_loss::activation::sigmoid, -1.0, 0.0, {}}.evaluate(xs, ts);
  CHECK(focal.value == doctest::Approx(bce.value).epsilon(1e-13));
  for (index_t i = 0; i < xs.size(); ++i) CHECK(focal.gradient[i] == doctest::Approx(bce.gradient[i]).epsilon(1e-12));
}

TEST_CASE("focal (softmax): closed form; gamma 0 is cross-entropy (labels = one-hot), ignored pixels") {
  // Two classes, equal logits: p = ½; ℓ = −(½)^γ log ½ at γ = 2.
  tensor64 x = tensor64::zeros({1, 2, 1, 1}), label({1, 1, 1});
  label[0] = 1;
  nn::focal_loss softmax_focal{nn::focal_loss::activation::softmax, 0.25, 2.0, {}};
  CHECK(softmax_focal.value(x, label) == doctest::Approx(0.25 * std::log(2.0)).epsilon(1e-14));

  rng gen(12);
  const shape s{2, 4, 3, 5};
  const auto xs = filled<double, f64>(s, gen, -3, 3);
  const auto labels = random_labels<double, f64>(shape{2, 3, 5}, 4, gen, 7);
  // Brute-force cross-entropy over the labelled pixels.
  double ce = 0;
  index_t used = 0;
  for (index_t n = 0; n < 2; ++n)
    for (index_t j = 0; j < 15; ++j) {
      const double l = labels[n * 15 + j];
      if (l < 0) continue;
      double z = 0;
      for (index_t c = 0; c < 4; ++c) z += std::exp(xs[(n * 4 + c) * 15 + j]);
      ce -= xs[(n * 4 + static_cast<index_t>(l)) * 15 + j] - std::log(z);
      ++used;
    }
  nn::focal_loss cross_entropy{nn::focal_loss::activation::softmax, 0.25, 0.0, {}};
  const auto by_label = cross_entropy.evaluate(xs, labels);
  CHECK(by_label.value == doctest::Approx(ce / static_cast<double>(used)).epsilon(1e-13));
  // The same labels as a [N, 1, H, W] map and as one-hot maps (ignored pixels: all-zero rows) agree.
  tensor64 labels4 = labels.clone();
  labels4.reshape({2, 1, 3, 5});
  tensor64 one_hot = tensor64::zeros(s);
  for (index_t n = 0; n < 2; ++n)
    for (index_t j = 0; j < 15; ++j)
      if (labels[n * 15 + j] >= 0) one_hot[(n * 4 + static_cast<index_t>(labels[n * 15 + j])) * 15 + j] = 1;
  for (const nn::focal_loss& f : {cross_entropy, softmax_focal}) {
    const auto a = f.evaluate(xs, labels), b = f.evaluate(xs, labels4), c = f.evaluate(xs, one_hot);
    CHECK(a.value == b.value);
    // One-hot targets average over all pixels, labels over the labelled ones.
    CHECK(c.value * static_cast<double>(2 * 15) == doctest::Approx(a.value * static_cast<double>(used)).epsilon(1e-13));
    for (index_t i = 0; i < xs.size(); ++i) {
      CHECK(a.gradient[i] == b.gradient[i]);
      CHECK(c.gradient[i] * 30.0 == doctest::Approx(a.gradient[i] * static_cast<double>(used)).epsilon(1e-12));
    }
  }
}

TEST_CASE("tversky: closed form on probabilities; alpha = beta = ½ is Dice with doubled smoothing") {
  tensor64 p({1, 1, 1, 3}), t({1, 1, 1, 3});
  const double pv[] = {1, 0.5, 0}, tv[] = {1, 1, 0};
  for (int i = 0; i < 3; ++i) p[i] = pv[i], t[i] = tv[i];
  // TP = 1.5, FP = 0, FN = 0.5: TI = (1.5 + 1) / (1.5 + 0.3·0 + 0.7·0.5 + 1)
  nn::tversky_loss tv_loss{nn::tversky_loss::activation::none, 0.3, 0.7, 1.0};
  CHECK(tv_loss.value(p, t) == doctest::Approx(1 - 2.5 / 2.85).epsilon(1e-14));

  rng gen(13);
  const shape s{2, 3, 4, 5};
  const auto ps = filled<double, f64>(s, gen, 0, 1), ts = filled<double, f64>(s, gen, 0, 1);
  double dice = 0;
  for (index_t c = 0; c < 3; ++c) {
    double tp = 0, sp = 0, st = 0;
    for (index_t n = 0; n < 2; ++n)
      for (index_t j = 0; j < 20; ++j) {
        const index_t i = (n * 3 + c) * 20 + j;
        tp += ps[i] * ts[i], sp += ps[i], st += ts[i];
      }
    dice += (2 * tp + 2 * 0.75) / (sp + st + 2 * 0.75);  // Dice with smoothing 2·0.75
  }
  CHECK(nn::tversky_loss::dice(nn::tversky_loss::activation::none, 0.75).value(ps, ts) ==
        doctest::Approx(1 - dice / 3).epsilon(1e-13));
  // A perfect prediction of a binary target scores 0; of a soft target it does not (FP = Σ p(1 − t) > 0).
  auto binary = ts.clone();
  for (index_t i = 0; i < binary.size(); ++i) binary[i] = binary[i] < 0.5 ? 0 : 1;
  CHECK(tv_loss.value(binary, binary) == doctest::Approx(0).scale(1e-14));
  CHECK(tv_loss.value(ts, ts) > 0.1);
}

// ---- PyTorch ----------------------------------------------------------------------------------------

TEST_CASE("losses equal PyTorch's values and autograd gradients") {
  const auto x = golden_logits(), soft = golden_soft(), mask = golden_mask(), labels = golden_labels();
  using act = nn::focal_loss::activation;
  auto run = [&](const char* name, const nn::loss_result<double, f64>& r) { check_against(torch_loss(name), r.value, r.gradient); };
  run("mse", nn::mse_loss{}.evaluate(x, soft));
  run("masked_mse", nn::mse_loss{}.evaluate(x, soft, mask));
  run("bce_pos_weight", nn::bce_with_logits_loss{{1.0, 2.5, 0.5}}.evaluate(x, soft));
  run("focal_sigmoid_a025_g2", nn::focal_loss{act::sigmoid, 0.25, 2.0, {}}.evaluate(x, soft));
  run("focal_sigmoid_noalpha_g05", nn::focal_loss{act::sigmoid, -1.0, 0.5, {}}.evaluate(x, soft));
  run("cross_entropy_labels", nn::focal_loss{act::softmax, 0.25, 0.0, {}}.evaluate(x, labels));
  // Soft targets: softmax(3·soft) over channels.
  tensor64 distribution(golden_shape);
  for (index_t n = 0; n < 2; ++n)
    for (index_t j = 0; j < 4; ++j) {
      double z = 0;
      for (index_t c = 0; c < 3; ++c) z += std::exp(3 * soft[(n * 3 + c) * 4 + j]);
      for (index_t c = 0; c < 3; ++c) distribution[(n * 3 + c) * 4 + j] = std::exp(3 * soft[(n * 3 + c) * 4 + j]) / z;
    }
  run("cross_entropy_soft", nn::focal_loss{act::softmax, 0.25, 0.0, {}}.evaluate(x, distribution));
  run("focal_softmax_labels_g2_w", nn::focal_loss{act::softmax, 0.25, 2.0, {1.0, 2.0, 0.5}}.evaluate(x, labels));
  using tact = nn::tversky_loss::activation;
  run("tversky_softmax_labels", nn::tversky_loss{tact::softmax, 0.3, 0.7, 1.0}.evaluate(x, labels));
  run("tversky_sigmoid", nn::tversky_loss{tact::sigmoid, 0.7, 0.3, 0.5}.evaluate(x, soft));
  // Dice on given probabilities p = σ(x): PyTorch differentiated through σ, so chain dL/dp with σ'.
  tensor64 p(golden_shape);
  for (index_t i = 0; i < p.size(); ++i) p[i] = sigmoid(x[i]);
  auto dice = nn::tversky_loss::dice(tact::none, 1.0).evaluate(p, soft);
  for (index_t i = 0; i < p.size(); ++i) dice.gradient[i] *= p[i] * (1 - p[i]);
  run("dice_none", dice);
}

// ---- finite differences -----------------------------------------------------------------------------

TEST_CASE("every loss: gradients match central differences (NCHW and NCDHW, odd sizes)") {
  rng gen(21);
  using fact = nn::focal_loss::activation;
  using tact = nn::tversky_loss::activation;
  for (const shape& s : {shape{2, 3, 3, 5}, shape{1, 4, 2, 3, 3}}) {
    CAPTURE(s.str());
    const index_t classes = s[1];
    shape label_shape = s;
    label_shape[1] = 1;
    const auto x = filled<double, f64>(s, gen, -3, 3);
    const auto soft = filled<double, f64>(s, gen, 0, 1);
    auto binary = filled<double, f64>(s, gen, 0, 1);
    for (index_t i = 0; i < binary.size(); ++i) binary[i] = binary[i] < 0.3 ? 1 : 0;
    const auto mask = filled<double, f64>(s, gen, -1, 1);
    const auto labels = random_labels<double, f64>(label_shape, classes, gen, 5);
    const auto full_labels = random_labels<double, f64>(label_shape, classes, gen, 0);
    std::vector<double> per_channel(static_cast<std::size_t>(classes));
    for (auto& w : per_channel) w = gen.uniform(0.2, 3);

    auto check = [&](const char* what, auto&& loss, const tensor64& target) {
      INFO(what);
      CHECK(check_loss_gradient([&](const tensor64& p) { return loss.evaluate(p, target); }, x) < 1e-5);
    };
    check("mse", nn::mse_loss{}, soft);
    INFO("masked mse");
    CHECK(check_loss_gradient([&](const tensor64& p) { return nn::mse_loss{}.evaluate(p, soft, mask); }, x) < 1e-5);
    check("bce", nn::bce_with_logits_loss{}, soft);
    check("bce pos_weight", nn::bce_with_logits_loss{{2.5}}, binary);
    check("bce per-channel pos_weight", nn::bce_with_logits_loss{per_channel}, soft);
    for (double gamma : {0.0, 0.5, 2.0}) {
      CAPTURE(gamma);
      check("focal sigmoid soft", nn::focal_loss{fact::sigmoid, 0.25, gamma, {}}, soft);
      check("focal sigmoid binary, no alpha", nn::focal_loss{fact::sigmoid, -1, gamma, {}}, binary);
      check("focal softmax labels", nn::focal_loss{fact::softmax, 0.25, gamma, per_channel}, labels);
      check("focal softmax soft", nn::focal_loss{fact::softmax, 0.25, gamma, {}}, soft);
    }
    check("tversky softmax labels (ignored pixels)", nn::tversky_loss{tact::softmax, 0.3, 0.7, 1.0}, labels);
    check("tversky softmax labels", nn::tversky_loss{tact::softmax, 0.6, 0.4, 0.0}, full_labels);
    check("tversky softmax soft", nn::tversky_loss{tact::softmax, 0.5, 0.5, 1.0}, soft);
    check("tversky sigmoid", nn::tversky_loss{tact::sigmoid, 0.2, 0.8, 0.1}, binary);
    // On probabilities the gradient is dL/dp: check it at p in (0, 1).
    const auto probabilities = filled<double, f64>(s, gen, 0.05, 0.95);
    INFO("tversky none");
    CHECK(check_loss_gradient([&](const tensor64& p) { return nn::tversky_loss{tact::none, 0.7, 0.3, 1.0}.evaluate(p, soft); },
                              probabilities) < 1e-5);
  }
}

TEST_CASE("losses stay finite at saturated logits") {
  tensor64 x({1, 2, 1, 4}), t({1, 2, 1, 4});
  const double xv[] = {80, -80, 700, -700, 30, -30, 0, 5};
  const double tv[] = {1, 0, 0, 1, 1, 1, 0.5, 0};
  for (int i = 0; i < 8; ++i) x[i] = xv[i], t[i] = tv[i];
  tensor64 labels({1, 1, 4});
  for (int i = 0; i < 4; ++i) labels[i] = i % 2;
  using fact = nn::focal_loss::activation;
  using tact = nn::tversky_loss::activation;
  auto finite = [](const nn::loss_result<double, f64>& r) {
    bool ok = std::isfinite(r.value);
    for (index_t i = 0; i < r.gradient.size(); ++i) ok = ok && std::isfinite(r.gradient[i]);
    return ok;
  };
  CHECK(finite(nn::bce_with_logits_loss{{4.0}}.evaluate(x, t)));
  for (double gamma : {0.0, 0.5, 2.0}) {
    CHECK(finite(nn::focal_loss{fact::sigmoid, 0.25, gamma, {}}.evaluate(x, t)));
    CHECK(finite(nn::focal_loss{fact::softmax, 0.25, gamma, {}}.evaluate(x, labels)));
    CHECK(finite(nn::focal_loss{fact::softmax, 0.25, gamma, {}}.evaluate(x, t)));
  }
  CHECK(finite(nn::tversky_loss{tact::softmax, 0.5, 0.5, 0.0}.evaluate(x, labels)));
  CHECK(finite(nn::tversky_loss{tact::sigmoid, 0.5, 0.5, 0.0}.evaluate(x, t)));
  // A confident, correct prediction costs (almost) nothing.
  CHECK(nn::bce_with_logits_loss{}.value(x, t) > 0);
  tensor64 sure({1, 2, 1, 1}), label({1, 1, 1});
  sure[0] = 50, sure[1] = -50, label[0] = 0;
  CHECK(nn::focal_loss{fact::softmax, 0.25, 0.0, {}}.value(sure, label) == doctest::Approx(0).scale(1e-40));
}

// ---- bad input --------------------------------------------------------------------------------------

TEST_CASE("losses: bad shapes, labels and parameters are readable errors") {
  tensor64 x = tensor64::zeros({2, 3, 4, 4}), wrong = tensor64::zeros({2, 3, 4, 5});
  using fact = nn::focal_loss::activation;
  using tact = nn::tversky_loss::activation;
  CHECK_THROWS_WITH_AS((nn::mse_loss{}.evaluate(x, wrong)), doctest::Contains("[2, 3, 4, 4]"), error);
  CHECK_THROWS_WITH_AS((nn::mse_loss{}.evaluate(x, x, wrong)), doctest::Contains("mask"), error);
  CHECK_THROWS_WITH_AS((nn::bce_with_logits_loss{{1, 2}}.evaluate(x, x)), doctest::Contains("2 pos_weight values for 3 channels"), error);
  CHECK_THROWS_WITH_AS((nn::focal_loss{fact::softmax, 0.25, 2, {1, 2}}.evaluate(x, x)), doctest::Contains("class weights"), error);
  CHECK_THROWS_WITH_AS((nn::focal_loss{fact::sigmoid, 0.25, -1, {}}.evaluate(x, x)), doctest::Contains("gamma"), error);
  tensor64 one = tensor64::zeros({2, 1, 4, 4});
  CHECK_THROWS_WITH_AS((nn::focal_loss{fact::softmax, 0.25, 2, {}}.evaluate(one, one)), doctest::Contains("at least 2"), error);
  tensor64 labels = tensor64::zeros({2, 4, 4});
  labels[7] = 3;  // classes are 0, 1, 2
  CHECK_THROWS_WITH_AS((nn::focal_loss{fact::softmax, 0.25, 2, {}}.evaluate(x, labels)), doctest::Contains("1 pixels"), error);
  labels[7] = 0.5;
  CHECK_THROWS_WITH_AS((nn::tversky_loss{}.evaluate(x, labels)), doctest::Contains("integers in [0, 3)"), error);
  labels[7] = std::nan("");
  CHECK_THROWS_AS((nn::tversky_loss{}.evaluate(x, labels)), error);
  CHECK_THROWS_WITH_AS((nn::tversky_loss{tact::sigmoid, -0.1, 0.5, 1}.evaluate(x, x)), doctest::Contains("alpha"), error);
  tensor64 flat = tensor64::zeros({16});
  CHECK_THROWS_WITH_AS((nn::tversky_loss{}.evaluate(flat, flat)), doctest::Contains("rank 2 to 5"), error);
}

static_assert(nn::loss_function<nn::mse_loss, f64> && nn::loss_function<nn::bce_with_logits_loss, backend::cpu> &&
              nn::loss_function<nn::focal_loss, backend::reference> && nn::loss_function<nn::tversky_loss, f64>);
