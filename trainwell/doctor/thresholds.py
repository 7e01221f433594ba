"""Where each of the doctor's rules fires, and why there.

Rules (each threshold from the mechanism it tests):

* vanishing / exploding gradients: RMS weight gradient of the first weighted
  layer over the last's. Backpropagation multiplies one factor per layer;
  a ratio below 1e-2 (above 1e2) means the factors shrink (grow) - sigmoid's
  derivative, at most 0.25, gives 0.25^3 ~ 1.6e-2 after three layers, while
  ReLU nets with He or torch's default init measure 0.1-0.3. Exploding also
  when the weight gradients' RMS exceeds 10 (with a loss whose derivative is
  bounded, as cross-entropy's, a weight gradient scales with the activations
  it multiplies; 25 healthy benchmark runs stay below 0.04), when it grows
  1000-fold since the first step to above 1, or when it becomes non-finite.
  Vanishing also when the back-propagated (state) gradient at the first
  activation is below 1e-3 of the one at the last: with too small a start it
  shrinks layer by layer while the weight gradients keep their ratio, the
  last layer's being as small as the activations it multiplies (Glorot &
  Bengio 2010); healthy benchmark runs measure 0.04 (CNNs) to 4, vanishing
  cases 1e-8 to 4e-4. Not vanishing when the first layer's gradient is
  exactly 0 (weights), the gradient at the first activation is exactly 0 or
  any layer's units are dead (states): a product of
  small derivatives shrinks a gradient, dead ReLUs (0 for every input) stop
  it - that is dead_relu.
* exploding gradients through time (seed 000: an RNN's gradient with respect
  to an early state holds the recurrent matrix once per time step): the
  gradient reaching a recurrent layer's first time step's input over the
  last's, for a model that reads the last state. Above 10 the steps' factors
  grow (healthy RNN, GRU, LSTM and seq2seq benchmark runs measure 0 to 1.2;
  gated cells on 40 steps measure ~0, which is why no vanishing rule is made
  from it). At step 0 one sample suffices - it measures the initial recurrent
  weights, as the initialisation check does; later, two samples in a row.
* saturation / dead ReLU: share of units whose derivative is ~0 (sigmoid/tanh
  output within 3% of its limits, above 60% of a layer on two samples in a
  row; ReLU output 0 for every row of a window of sampled batches holding at
  least 128 rows, above 50% of a layer - one batch may hold a single class,
  for which a class-specific unit is rightly silent). The update size that
  names a rate too high as the cause is the gradient's share of the update:
  the part of dw that shrinks w along itself (weight decay) is left out.
* learning rate: ``|dw| / |w|`` per step; healthy training moves weights by
  ~1e-3 to 1e-2 of their size per step. Above 0.1 on two samples in a row the steps
  overshoot (one sample is not enough: RMSprop's first step, without bias
  correction, is 10x its rate); below 1e-6 nothing moves, and below 1e-4 on
  a plateau it is why. Remedies size the new rate from the first measured
  step, which is proportional to the rate (the gradient at the start does not
  depend on it; later steps of an unstable run are amplified): the new rate
  would have made that step 3e-2 of the weights - a third of the overshoot
  threshold, within the 1e-3 to 6e-2 that healthy benchmark runs measure -
  and a rate is lowered at least 10x. A first step above 0.1 followed by a
  NaN loss or a divergence (before a second sample could confirm it) is a
  rate too high too: the blow-up confirms the one sample. With the run's
  length known, steps that add up to less than 1% of the weights over the
  rest of the run (judged in its first quarter) are a rate too low at once,
  not after a plateau; a rate that rose since the last sample is a warmup
  and never too low, and a rate within 10x of one that made a median step
  above ``update_high`` earlier in the run is never too low either: the net
  stalled after the overshoot (set 9's un-normalised residual CNN: steps of
  0.14, then 3e-5 at chance), so its tiny steps are the gradient's.
* divergence within an epoch: the loss ten times its first value. Both are
  means over the last steps that hold 32 rows (``divergence_rows``): one
  row's loss is no run's loss (at batch size 1, a single sample of a healthy
  run on moons measured 8.07 against a first 0.62). Batches of 32 rows or
  more judge one step, as before.
* bad initialisation: at step 0 the spread of the pre-activations falls
  below 1/10 (or rises above 10x) of the first layer's by the last, measured
  on the first batch standardised per feature (one extra forward pass): the
  input's own scale or offset is not the weights' fault. A growing spread is
  a warning at once; a shrinking one becomes a warning only when the run
  shows its cost (vanishing gradients or units dead from the start, or an
  epoch ``init_steps`` updates in whose loss fell by less than
  ``init_progress`` of the first steps'), and info
  otherwise (torch's default init shrinks a ReLU net's spread ~0.4x a layer,
  and a 3-layer digits CNN with it reaches 0.98).
* vanishing gradients name the cause the measurements show: the start (a bad
  initialisation found), batch norm on batches below 8, a saturating
  activation in the model, or depth when the weight gradient shrinks layer
  after layer over four or more layers; otherwise no cause.
* learning rate too high: not when a sample's median step is less than half
  the previous one's - Adam's first step is ~lr per weight, larger than small
  weights, and the weights then outgrow it.
* NaN loss: the cause is named: ``bad_input`` (the batch holds non-finite
  rows), ``log_of_zero`` (every module's output is finite: the loss itself
  took log(0), or a parameter-free module made a NaN from finite values),
  ``exploding_gradients`` (gradients were large from step 0, or exploding
  before any step overshot) or ``learning_rate_too_high`` (the first step
  overshot, or nothing else explains the growth). A divergence names its
  cause the same way.
  The first module whose output became non-finite is named, apart from the
  modules that only passed it on.
* per epoch: divergence (the loss rose 3 epochs running to 1.5x its minimum,
  and either above the untrained model's loss or for 50 updates or more: a
  shorter rise below it may be a spike of a rate near the stability edge,
  which comes back down - Lewkowycz et al. 2020, Cohen et al. 2021),
  oscillation (the loss changed direction 5 times in 8 epochs, the median
  distance of an epoch's loss from the line through its neighbours above 10%
  of the window's mean, larger than the mean gap between the validation and
  the training loss - a run at its noise floor swings less than that gap -
  and than a tenth of the descent the run has made: swings about a fitted
  solution are noise),
  plateau (less than 1% better in 5 epochs, and never 10% above where the
  window started - a rise is not a plateau - before the loss has halved or the
  training accuracy reached 0.9: slow convergence, and underfitting when the
  training accuracy stays below 0.7; its remedy raises the rate only while
  steps are smaller than the remedies' target),
  overfitting (validation loss 5% above its minimum for 3 epochs and at its
  worst since then - worse and worse, not jumping about a level - while the
  training loss has stayed below its value at that minimum - seed 003's
  picture; a training spike that drags validation up is instability - and
  is below the untrained model's first loss - over the epochs of the rise
  only: one noisy epoch just after the best is no spike, and counting it
  hid a memorising run's overfitting for the rest of its 300 epochs - and the training accuracy,
  where known, is not below underfitting's 0.7: good on the training data,
  bad on validation. The training loss need not be below the validation
  loss: a small validation set can be easier than the training set).
* the lint (lint.py, before training): dropout p >= 0.8; batch norm on
  batches below 8 rows; a confidently wrong output's gradient below 1/20 of
  the model's own, both relative to cross-entropy's (healthy losses measure
  0.6 (BCE per class over 10) to 1.4; MSE after a sigmoid or softmax 0 to
  3e-4); a loss gradient above half the batch size times cross-entropy's mean
  (sum reduction measures exactly the batch size), judged by its first step:
  a summed loss harms through the size of its steps, so a first step within
  ``update_high`` shows a rate chosen for the sum (divided by the batch
  size) and the finding is info.
* the batches' order (order.py): the median sampled batch of the first
  epoch with 3 of them is less than 1e-6 likely under shuffling, given the
  classes it holds and their shares in the epoch (``(sum_S p_k)^B``):
  sorted classes give ~1e-19 and less for batches of 32, shuffled ones ~1.
* the end-of-run verdict (verdict.py): the model's accuracy on 512 training
  rows got less than half of the way from the majority class to a linear
  softmax model fitted on the same rows (judged only where that linear model
  beats the majority class by 0.1).
* slow steps (a note, not a finding: the machine, not the model): the time
  an update takes (an epoch's ``seconds`` over its updates) 3x the median of
  the first 3 epochs', for 2 epochs running, each at least 0.2 s long. The
  median, because the first epoch can be slow by itself (start-up: 8.6x the
  next two's once on MNIST-1D). 3x, because healthy runs stay well below it
  on a busy 2-core machine (the worst 2 epochs running, at a load of 1.2 to
  3.4: 1.3x for MNIST-1D's MLP and CNN and the digits CNN, epochs of 0.1 to
  0.4 s; 2.2x for moons' 0.03 s epochs, below the 0.2 s floor), while two
  CPU-bound processes started next to a 2-thread MNIST-1D run made its
  updates 2.2x to 10x slower (3.6x and 3.2x the first two epochs after;
  4x would have waited 5 more), and the issue measured 10x to 40x for two
  trainwell processes. 2 epochs, because one slow epoch is a burst of
  another job. 0.2 s, because shorter epochs cost the user little and a
  scheduler's quantum (~10 ms) is a large share of them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Thresholds"]


@dataclass(frozen=True)
class Thresholds:
    """Where each rule fires (the module docstring says why these values)."""

    vanishing_ratio: float = 1e-2
    vanishing_state_ratio: float = 1e-3
    exploding_ratio: float = 1e2
    exploding_rms: float = 10.0
    exploding_growth: float = 1e3
    exploding_time_ratio: float = 10.0  # through time: healthy RNN/GRU/LSTM/seq2seq runs measure 0 to 1.2
    saturated_share: float = 0.6
    dead_share: float = 0.5
    dead_rows: int = 128  # a unit is dead when 0 on every row of the sampled batches of a window this many rows
    persist: int = 2
    update_high: float = 0.1
    update_low: float = 1e-6
    run_move: float = 1e-2  # with the run's length known: steps that add up to less than this in it crawl
    step_target: float = 3e-2  # learning-rate remedies aim at steps this size: a third of update_high
    init_collapse: float = 0.1
    init_explode: float = 10.0
    init_progress: float = 0.1  # a shrinking start is a warning when the loss fell less than this share...
    init_steps: int = 50        # ... by the end of the first epoch this many updates in (or of the run)
    plateau_epochs: int = 5
    plateau_improvement: float = 0.01
    plateau_band: float = 0.1  # a plateau's loss stays within this share above where it started
    fitted_accuracy: float = 0.9
    underfit_accuracy: float = 0.7
    overfit_patience: int = 3
    overfit_rise: float = 0.05
    divergence_epochs: int = 3
    divergence_factor: float = 1.5
    divergence_jump: float = 10.0
    divergence_rows: int = 32  # the within-epoch check compares means over steps holding at least this many rows
    spike_steps: int = 50  # a rise below the first loss shorter than this may be a spike, not divergence
    oscillation_window: int = 8
    oscillation_turns: int = 5
    oscillation_size: float = 0.1
    # the batches' order (order.py)
    order_batches: int = 3  # sampled batches of an epoch needed to judge their order
    unshuffled_chance: float = 1e-6  # the median batch this unlikely under shuffling: the rows are in order
    # the lint (lint.py): static checks before training
    small_batch_norm: int = 8  # batch norm on fewer rows than this estimates its statistics from too few
    dropout_high: float = 0.8  # a drop probability this high is a keep probability written as p
    output_gradient_saturated: float = 0.05  # confidently-wrong gradient / own gradient (both vs CE) below this
    sum_reduction_share: float = 0.5
    # the end-of-run verdict (verdict.py)
    verdict_share: float = 0.5  # below this share of the way from the majority class to a linear model: underfit
    verdict_room: float = 0.1  # a linear model must beat the majority class by this much to be a reference
    # the note on slow steps (epochs.py): the machine, not the model
    step_time_growth: float = 3.0  # an update this many times slower than at the start...
    step_time_epochs: int = 2  # ...for this many epochs running...
    step_time_base_epochs: int = 3  # ...than the median over this many first epochs...
    step_time_min_seconds: float = 0.2  # ...each of the slow epochs lasting at least this long  # the loss's gradient above this times the batch size x CE-mean's: a sum
