# coding: utf-8
# ch07 style: train SimpleConvNet with the Trainer (MNIST-shaped synthetic data unless
# `mnist` is given: then dataset.mnist.load_mnist). Usage: train_convnet.py [N_TRAIN] [EPOCHS] [mnist]
import sys, os
sys.path.append(os.pardir)
import time
import numpy as np
from simple_convnet import SimpleConvNet
from common.trainer import Trainer
from synthetic import digits

n_train = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
if len(sys.argv) > 3 and sys.argv[3] == "mnist":
    from dataset.mnist import load_mnist
    (x_train, t_train), (x_test, t_test) = load_mnist(flatten=False)
    x_train, t_train, x_test, t_test = x_train[:n_train], t_train[:n_train], x_test[:500], t_test[:500]
else:
    n_test = 500 if n_train >= 500 else 100
    x, t = digits(n_train + n_test)
    x_train, t_train, x_test, t_test = x[:n_train], t[:n_train], x[n_train:], t[n_train:]

np.random.seed(0)
network = SimpleConvNet(input_dim=(1, 28, 28),
                        conv_param={'filter_num': 30, 'filter_size': 5, 'pad': 0, 'stride': 1},
                        hidden_size=100, output_size=10, weight_init_std=0.01)
trainer = Trainer(network, x_train, t_train, x_test, t_test, epochs=epochs, mini_batch_size=100,
                  optimizer='Adam', optimizer_param={'lr': 0.001},
                  evaluate_sample_num_per_epoch=500, verbose=False)
start = time.perf_counter()
trainer.train()
elapsed = time.perf_counter() - start
print("loss:", " ".join("%.8g" % v for v in trainer.train_loss_list[::5]))
print("train acc:", trainer.train_acc_list, "test acc:", trainer.test_acc_list)
print("train seconds: %.2f" % elapsed, file=sys.stderr)
