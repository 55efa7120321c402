# The course's optimizers (learning_rate=, update(params, grad)) on f(x, y) = x**2 / 20 + y**2.
import sys, os
sys.path.append(os.pardir)
import numpy as np
from common import optimizer


def df(x, y):
    return x / 10.0, 2.0 * y


optimizers = {
    "SGD": optimizer.SGD(learning_rate=0.95),
    "Momentum": optimizer.Momentum(learning_rate=0.1),
    "Nesterov": optimizer.Nesterov(learning_rate=0.1),
    "AdaGrad": optimizer.AdaGrad(learning_rate=1.5),
    "RMSprop": optimizer.RMSprop(learning_rate=0.2),
    "Adam": optimizer.Adam(learning_rate=0.3),
}
for key, opt in optimizers.items():
    params = {'x': np.array(-7.0), 'y': np.array(2.0)}
    grad = {}
    for i in range(30):
        grad['x'], grad['y'] = df(params['x'], params['y'])
        opt.update(params, grad)
    print(key, "%.12g %.12g" % (params['x'], params['y']), opt.learning_rate)
