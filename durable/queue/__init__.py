"""Queue adapters: how workers learn that steps are ready and claim them."""
