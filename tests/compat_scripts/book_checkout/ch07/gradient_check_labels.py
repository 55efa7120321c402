# coding: utf-8
# ch07 style: SimpleConvNet's gradient check with one sample whose label has shape (1, 1),
# as the book's ch07/gradient_check.py passes it.
import numpy as np
from simple_convnet import SimpleConvNet

np.random.seed(2)
network = SimpleConvNet(input_dim=(1, 10, 10),
                        conv_param={'filter_num': 4, 'filter_size': 3, 'pad': 0, 'stride': 1},
                        hidden_size=6, output_size=10, weight_init_std=0.1)

X = np.random.rand(100).reshape((1, 1, 10, 10))
T = np.array([1]).reshape((1, 1))

grad_num = network.numerical_gradient(X, T)
grad = network.gradient(X, T)

for key, val in grad_num.items():
    diff = np.abs(grad_num[key] - grad[key]).mean()
    print(key, "ok" if diff < 1e-6 else "large", "%.10f" % np.sum(np.abs(grad[key])))
print("loss (1, 1) labels: %.12g" % network.loss(X, T))
print("same as (1,) labels:", network.loss(X, T) == network.loss(X, np.array([1])))
