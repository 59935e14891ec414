"""optax-hillclimb: an optax transformation that hill-climbs its learning rate.

From time to time it scores the loss at two candidate learning rates, a
little above and a little below the current one, along the update direction,
and moves the learning rate toward the better one.
"""

from optax_hillclimb._alias import hillclimb
from optax_hillclimb._alias import hillclimb_adam
from optax_hillclimb._alias import hillclimb_muon
from optax_hillclimb._climb import climb
from optax_hillclimb._climb import ClimbState
from optax_hillclimb._getters import get_hyperparams
from optax_hillclimb._getters import get_learning_rate
from optax_hillclimb._transform import HillclimbState
from optax_hillclimb._transform import scale_by_hillclimb
from optax_hillclimb._value_fn import drop_aux
from optax_hillclimb.flax_utils import nnx_value_fn

__version__ = "0.2.0"

__all__ = (
  "ClimbState",
  "HillclimbState",
  "climb",
  "drop_aux",
  "get_hyperparams",
  "get_learning_rate",
  "hillclimb",
  "hillclimb_adam",
  "hillclimb_muon",
  "nnx_value_fn",
  "scale_by_hillclimb",
)
