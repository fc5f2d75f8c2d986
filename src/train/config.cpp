#include "dptrain/train/config.hpp"

#include <sstream>

namespace dptrain {

std::string TrainConfig::to_ini() const {
  std::ostringstream ini;
  ini.precision(17);
  ini << "# dptrain training configuration; usable as --config FILE\n"
      << "data = " << data << "\n"
      << "layers = " << arch.layers_string() << "\n"
      << "activation = " << to_string(arch.hidden) << "\n"
      << "output = " << to_string(arch.output) << "\n"
      << "loss = " << to_string(arch.loss) << "\n"
      << "lr = " << optimizer.lr << "\n"
      << "momentum = " << optimizer.sgd.momentum << "\n"
      << "nesterov = " << (optimizer.sgd.nesterov ? "true" : "false") << "\n"
      << "weight-decay = " << optimizer.sgd.weight_decay << "\n"
      << "lr-schedule = " << to_string(optimizer.schedule) << "\n"
      << "warmup-epochs = " << optimizer.warmup_epochs << "\n"
      << "lr-step-epochs = " << optimizer.lr_step_epochs << "\n"
      << "lr-gamma = " << optimizer.lr_gamma << "\n"
      << "batch-size = " << batch_size << "\n"
      << "epochs = " << epochs << "\n"
      << "seed = " << seed << "\n"
      << "shuffle = " << (shuffle ? "true" : "false") << "\n"
      << "shards = " << shards << "\n"
      << "exact = " << (exact ? "true" : "false") << "\n"
      << "checkpoint-every = " << checkpoint_every << "\n"
      << "keep-checkpoints = " << keep_checkpoints << "\n";
  return ini.str();
}

}  // namespace dptrain
