#include "tessera/train/objective.h"

#include "tessera/metrics/language_model.h"

namespace tessera::train {

nlohmann::json Classification::extra_metrics(std::optional<double> test_loss,
                                             double samples_per_second) const {
  nlohmann::json figures = nlohmann::json::object();
  if (tokens_per_sample_ == 0) return figures;
  if (test_loss) {
    figures["test_bits_per_byte"] = metrics::bits_per_token(*test_loss);
    figures["test_perplexity"] = metrics::perplexity(*test_loss);
  }
  figures["tokens_per_second"] = samples_per_second * static_cast<double>(tokens_per_sample_);
  figures["seq_len"] = tokens_per_sample_;
  return figures;
}

}  // namespace tessera::train
