# coding: utf-8
# ch06 style: MultiLayerNetExtend with batch norm, backprop against the numerical gradient,
# on MNIST read from the checkout's dataset/mnist.pkl (no download).
import sys, os
sys.path.append(os.pardir)
import numpy as np
from dataset.mnist import load_mnist
from common.multi_layer_net_extend import MultiLayerNetExtend

(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)

np.random.seed(0)
network = MultiLayerNetExtend(input_size=784, hidden_size_list=[6, 6], output_size=10,
                              use_batchnorm=True)
x_batch = x_train[:2]
t_batch = t_train[:2]

grad_backprop = network.gradient(x_batch, t_batch)
grad_numerical = network.numerical_gradient(x_batch, t_batch)

for key in grad_numerical.keys():
    diff = np.average(np.abs(grad_backprop[key] - grad_numerical[key]))
    print(key + ":" + ("ok" if diff < 1e-6 else "large"), "%.10f" % np.sum(np.abs(grad_backprop[key])))
print("test labels:", t_test.argmax(axis=1).tolist())
