"""unforgotten: safety-preserving fine-tuning of LLMs, treated as continual learning.

Task 1 is the provider's safety alignment, task 2 the user's (possibly poisoned) data;
the job is to learn task 2 without forgetting task 1.
"""

__version__ = "0.1.0"
