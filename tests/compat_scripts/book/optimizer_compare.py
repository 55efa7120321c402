# coding: utf-8
# ch06 style: the optimizers on f(x, y) = x**2 / 20 + y**2.
import sys, os
sys.path.append(os.pardir)
import numpy as np
from collections import OrderedDict
from common.optimizer import *


def df(x, y):
    return x / 10.0, 2.0 * y


optimizers = OrderedDict()
optimizers["SGD"] = SGD(lr=0.95)
optimizers["Momentum"] = Momentum(lr=0.1)
optimizers["Nesterov"] = Nesterov(lr=0.1)
optimizers["AdaGrad"] = AdaGrad(lr=1.5)
optimizers["RMSprop"] = RMSprop(lr=0.2)
optimizers["Adam"] = Adam(lr=0.3)

for key in optimizers:
    optimizer = optimizers[key]
    params = {'x': np.array(-7.0), 'y': np.array(2.0)}
    grads = {}
    for i in range(30):
        grads['x'], grads['y'] = df(params['x'], params['y'])
        optimizer.update(params, grads)
    print(key, "%.12g %.12g" % (params['x'], params['y']))
