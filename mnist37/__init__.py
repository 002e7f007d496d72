__version__ = "0.1.0"

# fastai 2.8 imports torch.jit.script, which torch 2.10+ reports as deprecated on every import;
# the message says nothing a student can act on, so it is hidden here, for this message only.
import warnings as _warnings
_warnings.filterwarnings('ignore', message=r'.*torch\.jit\.script.*deprecated', category=FutureWarning)
