"""What the pages show, computed without Streamlit: tables as DataFrames, formatting and badges,
learning analytics and plotly figures. Pure functions, testable on their own."""
