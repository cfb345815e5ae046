"""The method: adversarial parameter decomposition (VPD) of any ``nn.Module``. Imports nothing else of vpd_lite
except ``vpd_lite.errors``.

Reading order (one sitting):
    A. causal_importance  leaky hard sigmoids and the CI functions (shared MLP, per-component MLP, vector MLP)
    B. components         rank-1 components U V wrapped around a model's linear layers; ``ModelAdapter``
    C. masks              stochastic masks g + (1-g) u and uniform-k-subset routing
    D. losses             faithfulness, stochastic reconstruction (KL / MSE), importance minimality
    E. pgd                adversarial mask sources: fresh PGD (evaluation) and persistent PGD (training)
    F. config             ``DecomposeConfig`` (every knob of a run) and ``--set`` overrides
    G. decompose          the training loop: warm-up, one step, Adam with cosine learning rate; the targeted
                          step (tPD: one capability's data against a remainder the rest of the data keeps)
    H. sharding           the data-parallel ``Shard`` and gradient averaging the loop uses
    I. checkpoint         save / load a decomposition (refuses the wrong model), training state to resume
    J. evaluate           CE / KL under the various masks, L0, dead components (targeted: also the rest's CE
                          with the remainder on)
    support: cross_entropy (next-token CE), devices (device choice, autocast, thread count), resumable (a run's
             data stream position, Ctrl-C deferral and the checks of a resume; shared with the target's training)

Deliberately not supported: attributions or gradient-based importance (CI functions only), decomposing
embeddings / convolutions other than GPT-2's Conv1D, model parallelism (only data-parallel shards), and
anything about a particular model or data set (that is ``vpd_lite.models``).
"""
