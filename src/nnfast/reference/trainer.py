"""Reference Trainer: mini-batch training loop with the toolkit's printed lines.

Extension seam
--------------
The optimizer classes are looked up by name in the class attribute ``_opt_module`` (a module
holding ``SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam``).  The native Trainer is a subclass
that sets nothing but that attribute::

    class Trainer(nnfast.reference.trainer.Trainer):
        _opt_module = nnfast.optimizer
"""
import numpy as np

from nnfast.reference import optimizer as _optimizer

__all__ = ["Trainer"]

# Accepted optimizer names (lower case) -> class name in ``_opt_module``.
# 'rmsprpo' is the spelling of the toolkit's own table, kept so old scripts keep working.
OPTIMIZER_NAMES = {
    "sgd": "SGD",
    "momentum": "Momentum",
    "nesterov": "Nesterov",
    "adagrad": "AdaGrad",
    "rmsprop": "RMSprop",
    "rmsprpo": "RMSprop",
    "adam": "Adam",
}


class Trainer:
    """Train ``network`` with mini-batches drawn by ``np.random.choice(train_size, batch_size)``.

    ``network`` needs ``params``, ``gradient(x, t)``, ``loss(x, t)`` and ``accuracy(x, t)``.
    ``optimizer`` is a name among ``OPTIMIZER_NAMES`` (case-insensitive) and
    ``optimizer_param`` its keyword arguments (default ``{'lr': 0.01}``).

    Every ``iter_per_epoch = max(train_size / mini_batch_size, 1)`` iterations (a float: with
    250 samples and batches of 100 an epoch ends when ``current_iter % 2.5 == 0``) the accuracy
    is measured on the first ``evaluate_sample_num_per_epoch`` samples of the training and test
    sets (all of them when None).
    """

    _opt_module = _optimizer

    def __init__(self, network, x_train, t_train, x_test, t_test, epochs=20,
                 mini_batch_size=100, optimizer="SGD", optimizer_param=None,
                 evaluate_sample_num_per_epoch=None, verbose=True):
        self.network = network
        self.verbose = verbose
        self.x_train = x_train
        self.t_train = t_train
        self.x_test = x_test
        self.t_test = t_test
        self.epochs = epochs
        self.batch_size = mini_batch_size
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch

        self.optimizer = self._make_optimizer(optimizer, optimizer_param)

        self.train_size = x_train.shape[0]
        self.iter_per_epoch = max(self.train_size / mini_batch_size, 1)
        self.max_iter = int(epochs * self.iter_per_epoch)
        self.current_iter = 0
        self.current_epoch = 0

        self.train_loss_list = []
        self.train_acc_list = []
        self.test_acc_list = []

    def _make_optimizer(self, name, optimizer_param):
        key = name.lower() if isinstance(name, str) else None
        if key not in OPTIMIZER_NAMES:
            valid = ", ".join(repr(n) for n in OPTIMIZER_NAMES)
            raise ValueError(f"optimizer must be one of {valid} (any case), got {name!r}")
        params = {"lr": 0.01} if optimizer_param is None else dict(optimizer_param)
        return getattr(self._opt_module, OPTIMIZER_NAMES[key])(**params)

    def _evaluation_samples(self):
        k = self.evaluate_sample_num_per_epoch
        if k is None:
            return self.x_train, self.t_train, self.x_test, self.t_test
        return self.x_train[:k], self.t_train[:k], self.x_test[:k], self.t_test[:k]

    def train_step(self):
        batch_mask = np.random.choice(self.train_size, self.batch_size)
        x_batch = self.x_train[batch_mask]
        t_batch = self.t_train[batch_mask]

        grads = self.network.gradient(x_batch, t_batch)
        self.optimizer.update(self.network.params, grads)

        loss = self.network.loss(x_batch, t_batch)
        self.train_loss_list.append(loss)
        if self.verbose:
            print("train loss:" + str(loss))

        if self.current_iter % self.iter_per_epoch == 0:
            self.current_epoch += 1
            x_tr, t_tr, x_te, t_te = self._evaluation_samples()
            train_acc = self.network.accuracy(x_tr, t_tr)
            test_acc = self.network.accuracy(x_te, t_te)
            self.train_acc_list.append(train_acc)
            self.test_acc_list.append(test_acc)
            if self.verbose:
                print("=== epoch:" + str(self.current_epoch) + ", train acc:" + str(train_acc)
                      + ", test acc:" + str(test_acc) + " ===")
        self.current_iter += 1

    def train(self):
        for _ in range(self.max_iter):
            self.train_step()

        test_acc = self.network.accuracy(self.x_test, self.t_test)
        if self.verbose:
            print("=============== Final Test Accuracy ===============")
            print("test acc:" + str(test_acc))
