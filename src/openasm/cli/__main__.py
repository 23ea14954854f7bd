from openasm.cli import app

app()
