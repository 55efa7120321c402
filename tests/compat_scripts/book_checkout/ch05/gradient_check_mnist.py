# coding: utf-8
# ch05 style: TwoLayerNet's backprop against its numerical gradient on MNIST read from the
# checkout's dataset/mnist.pkl (no download).
import sys, os
sys.path.append(os.pardir)
import numpy as np
from dataset.mnist import load_mnist
from two_layer_net import TwoLayerNet

(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)
print("data:", x_train.shape, x_train.dtype, t_train.shape, t_train.dtype, x_test.shape)

np.random.seed(0)
network = TwoLayerNet(input_size=784, hidden_size=8, output_size=10)
x_batch = x_train[:3]
t_batch = t_train[:3]

grad_numerical = network.numerical_gradient(x_batch, t_batch)
grad_backprop = network.gradient(x_batch, t_batch)

for key in grad_numerical.keys():
    diff = np.average(np.abs(grad_backprop[key] - grad_numerical[key]))
    print(key + ":" + ("ok" if diff < 1e-6 else "large"), "%.10f" % np.sum(np.abs(grad_backprop[key])))
print("loss: %.12g" % network.loss(x_batch, t_batch))
