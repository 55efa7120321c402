# coding: utf-8
# Gradient check (ch05/ch07 style): backprop vs numerical gradient of TwoLayerNet and SimpleConvNet.
import sys, os
sys.path.append(os.pardir)
import numpy as np
from two_layer_net import TwoLayerNet
from simple_convnet import SimpleConvNet

np.random.seed(1)
x_batch = np.random.rand(3, 20)
t_batch = np.eye(5)[np.random.randint(0, 5, 3)]

network = TwoLayerNet(input_size=20, hidden_size=8, output_size=5)
grad_numerical = network.numerical_gradient(x_batch, t_batch)
grad_backprop = network.gradient(x_batch, t_batch)
for key in grad_numerical.keys():
    diff = np.average(np.abs(grad_backprop[key] - grad_numerical[key]))
    print(key + ":" + ("ok" if diff < 1e-6 else "large"), "%.10g" % np.sum(np.abs(grad_backprop[key])))
print("loss: %.12g" % network.loss(x_batch, t_batch), type(network.lastLayer).__name__)

x = np.random.rand(2, 1, 8, 8)
t = np.array([1, 3])
network = SimpleConvNet(input_dim=(1, 8, 8),
                        conv_param={'filter_num': 3, 'filter_size': 3, 'pad': 0, 'stride': 1},
                        hidden_size=6, output_size=4, weight_init_std=0.1)
grad_numerical = network.numerical_gradient(x, t)
grad_backprop = network.gradient(x, t)
for key in ('W1', 'b1', 'W2', 'b2', 'W3', 'b3'):
    diff = np.average(np.abs(grad_backprop[key] - grad_numerical[key]))
    print(key + ":" + ("ok" if diff < 1e-6 else "large"), "%.10g" % np.sum(np.abs(grad_backprop[key])))
print("accuracy:", network.accuracy(np.random.rand(5, 1, 8, 8), np.arange(5) % 4, batch_size=2))
