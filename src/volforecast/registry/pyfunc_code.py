"""The model code MLflow stores with each logged model ("models from code", no pickle).

MLflow copies this file into the model and runs it at load time; it names the pyfunc class,
which reads the saved model from the ``model`` artifact.
"""

from mlflow.models import set_model

from volforecast.registry.pyfunc import VolatilityPyfunc

set_model(VolatilityPyfunc())
