# Gradient check in the course's style: backprop of a layer-built net and of DoubleConvNet
# against functions.numerical_gradient on each (flattened) parameter.
import sys, os
sys.path.append(os.pardir)
import numpy as np
from collections import OrderedDict
from common import layers, functions

np.random.seed(3)
x = np.random.rand(4, 12)
d = np.random.randint(0, 3, 4)
params = {'W1': 0.5 * np.random.randn(12, 6), 'b1': np.zeros(6),
          'W2': 0.5 * np.random.randn(6, 3), 'b2': np.zeros(3)}
net = OrderedDict()
net['Affine1'] = layers.Affine(params['W1'], params['b1'])
net['Sigmoid'] = layers.Sigmoid()
net['Affine2'] = layers.Affine(params['W2'], params['b2'])
last_layer = layers.SoftmaxWithLoss()


def loss(_):
    h = x
    for layer in net.values():
        h = layer.forward(h)
    return last_layer.forward(h, d)


print("loss: %.12g" % loss(None))
dout = last_layer.backward(1)
for layer in reversed(list(net.values())):
    dout = layer.backward(dout)
backprop = {'W1': net['Affine1'].dW, 'b1': net['Affine1'].db,
            'W2': net['Affine2'].dW, 'b2': net['Affine2'].db}
for key in ('W1', 'b1', 'W2', 'b2'):
    numerical = functions.numerical_gradient(loss, params[key].reshape(-1)).reshape(params[key].shape)
    diff = np.average(np.abs(backprop[key] - numerical))
    print(key, "ok" if diff < 1e-6 else "large", "%.10g" % np.sum(np.abs(backprop[key])))
print("teacher:", last_layer.d.tolist())

x = np.random.rand(2, 1, 10, 10)
d = np.array([0, 2])
network = layers.DoubleConvNet(input_dim=(1, 10, 10),
                               conv_param_1={'filter_num': 3, 'filter_size': 3, 'pad': 1, 'stride': 1},
                               conv_param_2={'filter_num': 4, 'filter_size': 3, 'pad': 1, 'stride': 1},
                               hidden_size=5, output_size=3, weight_init_std=0.1)
grad = network.gradient(x, d)
for key in ('W1', 'b1', 'W2', 'b2', 'W3', 'b3', 'W4', 'b4'):
    p = network.params[key]
    numerical = functions.numerical_gradient(lambda _: network.loss(x, d), p.reshape(-1)).reshape(p.shape)
    diff = np.average(np.abs(grad[key] - numerical))
    print(key, "ok" if diff < 1e-6 else "large", "%.10g" % np.sum(np.abs(grad[key])))
print("accuracy:", network.accuracy(np.random.rand(3, 1, 10, 10), np.array([0, 1, 2]), batch_size=2))
