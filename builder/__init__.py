"""focoos.builder: FocoosModels into a Triton model repository, and a launcher for a real tritonserver."""
